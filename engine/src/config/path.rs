//! JSON paths for configuration messages: `tools.cache_cas.limits[0].window`.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Where in the configuration document a value sits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path {
    segments: Vec<Segment>,
}

impl Path {
    /// The document itself.
    pub fn root() -> Path {
        Path::default()
    }

    /// The member `key` of this object.
    pub fn key(&self, key: &str) -> Path {
        let mut p = self.clone();
        p.segments.push(Segment::Key(key.to_string()));
        p
    }

    /// The element `index` of this array.
    pub fn index(&self, index: usize) -> Path {
        let mut p = self.clone();
        p.segments.push(Segment::Index(index));
        p
    }
}

impl Path {
    /// The path within the policy document (without the settings form's `policy.`), as
    /// denials name rules: the same whichever form the configuration takes.
    pub fn rule(&self) -> String {
        match self.segments.first() {
            Some(Segment::Key(k)) if k == "policy" => Path {
                segments: self.segments.get(1..).unwrap_or(&[]).to_vec(),
            }
            .text(),
            _ => self.text(),
        }
    }
}

/// A key that reads unambiguously after a dot (anything else is written `["..."]`).
fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

impl Path {
    /// The path as messages write it (built by hand: formatting machinery for one type
    /// weighs more in the module than this).
    pub fn text(&self) -> String {
        if self.segments.is_empty() {
            return "configuration".into();
        }
        let mut out = String::new();
        for (i, s) in self.segments.iter().enumerate() {
            match s {
                Segment::Key(k) if is_plain_key(k) => {
                    if i > 0 {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Key(k) => {
                    out.push('[');
                    crate::reply::push_json_string(&mut out, k);
                    out.push(']');
                }
                Segment::Index(n) => {
                    out.push('[');
                    crate::digits::push_decimal(&mut out, u64::try_from(*n).unwrap_or(u64::MAX));
                    out.push(']');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_the_document() {
        let p = Path::root()
            .key("tools")
            .key("cache_cas")
            .key("limits")
            .index(0)
            .key("window");
        assert_eq!(p.text(), "tools.cache_cas.limits[0].window");
        assert_eq!(
            Path::root().key("tools").key("db.query").text(),
            "tools[\"db.query\"]"
        );
        assert_eq!(Path::root().text(), "configuration");
        assert_eq!(Path::root().key("hide").index(2).text(), "hide[2]");
    }
}
