//! An in-memory rate limit service, so fleet-wide limits can be explored without one:
//! calendar windows per descriptor, all or nothing (an over-limit request counts nothing),
//! like the Redis-backed service Toolgate ships.

use crate::rls::{encode_response, Code, Descriptor, Response, Status};
use std::collections::HashMap;

/// A descriptor's entries and window start: what one count is kept for.
type Key = (Vec<(String, String)>, u64);

/// Counts per descriptor and window.
#[derive(Default)]
pub struct Service {
    counts: HashMap<Key, u64>,
}

fn window_secs(unit: u32) -> u64 {
    match unit {
        1 => 1,
        2 => 60,
        3 => 3_600,
        _ => 86_400,
    }
}

impl Service {
    /// Answers a request at `now` (Unix seconds) as an encoded `RateLimitResponse`.
    pub fn answer(&mut self, descriptors: &[Descriptor], now: u64) -> Vec<u8> {
        let keyed: Vec<(Key, &Descriptor, u64)> = descriptors
            .iter()
            .map(|d| {
                let w = window_secs(d.unit);
                ((d.entries.clone(), now - now % w), d, w - now % w)
            })
            .collect();
        // Descriptors with one key add up within the request, as in the Redis script.
        let mut pending: HashMap<&Key, u64> = HashMap::new();
        let over: Vec<bool> = keyed
            .iter()
            .map(|(k, d, _)| {
                let before = *pending
                    .entry(k)
                    .or_insert_with(|| self.counts.get(k).copied().unwrap_or(0));
                pending.insert(k, before.saturating_add(d.hits_addend));
                before.saturating_add(d.hits_addend.max(1)) > u64::from(d.requests_per_unit)
            })
            .collect();
        let any_over = over.iter().any(|o| *o);
        let mut statuses = Vec::new();
        for ((k, d, reset), is_over) in keyed.into_iter().zip(over) {
            let count = self.counts.entry(k).or_insert(0);
            if !any_over {
                *count = count.saturating_add(d.hits_addend);
            }
            statuses.push(Status {
                code: if is_over { Code::OverLimit } else { Code::Ok },
                remaining: u32::try_from(u64::from(d.requests_per_unit).saturating_sub(*count))
                    .unwrap_or(0),
                reset_secs: Some(reset),
            });
        }
        encode_response(&Response {
            overall: if any_over { Code::OverLimit } else { Code::Ok },
            statuses,
        })
    }
}
