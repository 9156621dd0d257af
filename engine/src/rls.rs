//! Envoy's rate limit service protocol (`envoy.service.ratelimit.v3.RateLimitService/
//! ShouldRateLimit`): the request Toolgate sends and the parts of the response it reads,
//! encoded and decoded by hand (a few fields; no protobuf runtime in the module).

/// The gRPC service and method.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
/// The method.
pub const METHOD: &str = "ShouldRateLimit";

/// One descriptor: entries, the limit to apply, and the units this call adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// `(key, value)` entries.
    pub entries: Vec<(String, String)>,
    /// Per-descriptor limit override: requests per unit.
    pub requests_per_unit: u32,
    /// Unit: 1 second, 2 minute, 3 hour, 4 day.
    pub unit: u32,
    /// Units this call adds.
    pub hits_addend: u64,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(out, field, 0);
        varint(out, v);
    }
}

/// Encodes a `RateLimitRequest`.
pub fn encode_request(domain: &str, descriptors: &[Descriptor]) -> Vec<u8> {
    let mut out = Vec::new();
    bytes(&mut out, 1, domain.as_bytes());
    for d in descriptors {
        let mut desc = Vec::new();
        for (k, v) in &d.entries {
            let mut entry = Vec::new();
            bytes(&mut entry, 1, k.as_bytes());
            bytes(&mut entry, 2, v.as_bytes());
            bytes(&mut desc, 1, &entry);
        }
        let mut limit = Vec::new();
        uint(&mut limit, 1, u64::from(d.requests_per_unit));
        uint(&mut limit, 2, u64::from(d.unit));
        bytes(&mut desc, 2, &limit);
        let mut addend = Vec::new();
        uint(&mut addend, 1, d.hits_addend);
        bytes(&mut desc, 3, &addend);
        bytes(&mut out, 2, &desc);
    }
    // The request-wide addend too, for servers that only read that one.
    if let Some(first) = descriptors.first() {
        if descriptors
            .iter()
            .all(|d| d.hits_addend == first.hits_addend)
        {
            uint(&mut out, 3, first.hits_addend.min(u64::from(u32::MAX)));
        }
    }
    out
}

/// Encodes an `envoy.config.core.v3.GrpcService` naming an Envoy cluster (what
/// `proxy_grpc_call` takes as its upstream).
pub fn grpc_service(cluster: &str) -> Vec<u8> {
    let mut envoy_grpc = Vec::new();
    bytes(&mut envoy_grpc, 1, cluster.as_bytes());
    let mut out = Vec::new();
    bytes(&mut out, 1, &envoy_grpc);
    out
}

/// The verdict of a descriptor or of the whole request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Unknown (treated as a failure).
    Unknown,
    /// Under the limit.
    Ok,
    /// Over the limit.
    OverLimit,
}

/// One descriptor's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// Its verdict.
    pub code: Code,
    /// Units left, as the service reports.
    pub remaining: u32,
    /// Seconds until its window resets, if reported.
    pub reset_secs: Option<u64>,
}

/// The parts of a `RateLimitResponse` Toolgate uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The overall verdict.
    pub overall: Code,
    /// Per-descriptor statuses, in request order.
    pub statuses: Vec<Status>,
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.b.split_first()?;
            self.b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The next field: (number, wire type, varint value, length-delimited bytes).
    fn field(&mut self) -> Option<(u64, u8, u64, &'a [u8])> {
        let k = self.varint()?;
        let wire = (k & 7) as u8;
        match wire {
            0 => Some((k >> 3, 0, self.varint()?, &[])),
            1 => {
                let (_, rest) = self.b.split_at_checked(8)?;
                self.b = rest;
                Some((k >> 3, 1, 0, &[]))
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let (body, rest) = self.b.split_at_checked(len)?;
                self.b = rest;
                Some((k >> 3, 2, 0, body))
            }
            5 => {
                let (_, rest) = self.b.split_at_checked(4)?;
                self.b = rest;
                Some((k >> 3, 5, 0, &[]))
            }
            _ => None,
        }
    }
}

fn code(v: u64) -> Code {
    match v {
        1 => Code::Ok,
        2 => Code::OverLimit,
        _ => Code::Unknown,
    }
}

fn decode_status(b: &[u8]) -> Option<Status> {
    let mut r = Reader { b };
    let mut s = Status {
        code: Code::Unknown,
        remaining: 0,
        reset_secs: None,
    };
    while !r.b.is_empty() {
        match r.field()? {
            (1, 0, v, _) => s.code = code(v),
            (3, 0, v, _) => s.remaining = u32::try_from(v).unwrap_or(u32::MAX),
            (4, 2, _, d) => {
                let mut dr = Reader { b: d };
                let mut secs = 0;
                let mut nanos = 0;
                while !dr.b.is_empty() {
                    match dr.field()? {
                        (1, 0, v, _) => secs = v,
                        (2, 0, v, _) => nanos = v,
                        _ => {}
                    }
                }
                s.reset_secs = Some(secs + u64::from(nanos > 0));
            }
            _ => {}
        }
    }
    Some(s)
}

/// Decodes a `RateLimitResponse`; `None` if the bytes are not one.
pub fn decode_response(b: &[u8]) -> Option<Response> {
    let mut r = Reader { b };
    let mut resp = Response {
        overall: Code::Unknown,
        statuses: Vec::new(),
    };
    while !r.b.is_empty() {
        match r.field()? {
            (1, 0, v, _) => resp.overall = code(v),
            (2, 2, _, s) => resp.statuses.push(decode_status(s)?),
            _ => {}
        }
    }
    Some(resp)
}

/// Encodes a response (for tests and the bundled service's own tests).
pub fn encode_response(r: &Response) -> Vec<u8> {
    let c = |c: Code| match c {
        Code::Unknown => 0,
        Code::Ok => 1,
        Code::OverLimit => 2,
    };
    let mut out = Vec::new();
    uint(&mut out, 1, c(r.overall));
    for s in &r.statuses {
        let mut st = Vec::new();
        uint(&mut st, 1, c(s.code));
        uint(&mut st, 3, u64::from(s.remaining));
        if let Some(secs) = s.reset_secs {
            let mut d = Vec::new();
            uint(&mut d, 1, secs);
            bytes(&mut st, 4, &d);
        }
        bytes(&mut out, 2, &st);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_encoding() {
        let d = Descriptor {
            entries: vec![("counter".into(), "c".into())],
            requests_per_unit: 30,
            unit: 2,
            hits_addend: 1,
        };
        let b = encode_request("tg", &[d]);
        // domain "tg"; descriptor { entry {key "counter" value "c"} limit {30, MINUTE} addend {1} }; hits_addend 1
        assert_eq!(
            b,
            [
                0x0a, 2, b't', b'g', 0x12, 24, 0x0a, 12, 0x0a, 7, b'c', b'o', b'u', b'n', b't',
                b'e', b'r', 0x12, 1, b'c', 0x12, 4, 0x08, 30, 0x10, 2, 0x1a, 2, 0x08, 1, 0x18, 1
            ]
        );
        assert_eq!(grpc_service("rl"), [0x0a, 4, 0x0a, 2, b'r', b'l']);
    }

    #[test]
    fn response_round_trip_and_garbage() {
        let r = Response {
            overall: Code::OverLimit,
            statuses: vec![
                Status {
                    code: Code::Ok,
                    remaining: 3,
                    reset_secs: Some(12),
                },
                Status {
                    code: Code::OverLimit,
                    remaining: 0,
                    reset_secs: None,
                },
            ],
        };
        assert_eq!(decode_response(&encode_response(&r)), Some(r));
        assert_eq!(
            decode_response(&[]),
            Some(Response {
                overall: Code::Unknown,
                statuses: vec![]
            })
        );
        for bad in [&[0x08][..], &[0x12, 5, 1], &[0xff; 12], &[0x0b]] {
            assert_eq!(decode_response(bad), None, "{bad:?}");
        }
    }
}
