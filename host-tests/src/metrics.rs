//! Metrics (`proxy_define_metric` and friends) with Envoy's semantics.
//!
//! Envoy keeps stats by name in one store: every worker VM that defines the same name gets
//! its own id but the same stat. Ids carry the kind in their low two bits. A counter only
//! accepts a positive increment (else `BAD_ARGUMENT`); a gauge goes up and down; a histogram
//! only records, and neither `increment` nor `get` apply to it (`BAD_ARGUMENT`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::abi::MetricType;

/// The value of one metric as a test reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricValue {
    /// A counter's total.
    Counter(u64),
    /// A gauge's value.
    Gauge(u64),
    /// Every value a histogram recorded, in order.
    Histogram(Vec<u64>),
}

#[derive(Debug)]
struct Metric {
    kind: MetricType,
    value: MetricValue,
}

/// The shared stats store. Cloning shares it.
#[derive(Clone, Default, Debug)]
pub struct Metrics {
    inner: Arc<Mutex<BTreeMap<String, Metric>>>,
}

impl Metrics {
    /// Defines (or finds) a stat; `None` when the name exists with another kind (Envoy
    /// would keep two stats with one name in different kinds; this host refuses that).
    pub(crate) fn define(&self, kind: MetricType, name: &str) -> Option<()> {
        let mut map = self.inner.lock().ok()?;
        let entry = map.entry(name.to_string()).or_insert_with(|| Metric {
            kind,
            value: match kind {
                MetricType::Counter => MetricValue::Counter(0),
                MetricType::Gauge => MetricValue::Gauge(0),
                MetricType::Histogram => MetricValue::Histogram(Vec::new()),
            },
        });
        (entry.kind == kind).then_some(())
    }

    pub(crate) fn update(&self, name: &str, f: impl FnOnce(&mut MetricValue)) {
        if let Ok(mut map) = self.inner.lock() {
            if let Some(metric) = map.get_mut(name) {
                f(&mut metric.value);
            }
        }
    }

    /// The value of the stat `name`.
    pub fn get(&self, name: &str) -> Option<MetricValue> {
        self.inner.lock().ok()?.get(name).map(|m| m.value.clone())
    }

    /// A counter's total (`None` if there is no counter of that name).
    pub fn counter(&self, name: &str) -> Option<u64> {
        match self.get(name)? {
            MetricValue::Counter(v) => Some(v),
            _ => None,
        }
    }

    /// A gauge's value.
    pub fn gauge(&self, name: &str) -> Option<u64> {
        match self.get(name)? {
            MetricValue::Gauge(v) => Some(v),
            _ => None,
        }
    }

    /// A histogram's recorded values.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        match self.get(name)? {
            MetricValue::Histogram(v) => Some(v),
            _ => None,
        }
    }

    /// Every stat name with its value, sorted by name.
    pub fn all(&self) -> Vec<(String, MetricValue)> {
        self.inner
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}
