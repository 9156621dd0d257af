//! JSON paths for configuration messages: `tools.cache_cas.limits[0].window`.

/// Where in the configuration document a value sits, kept as the text it is shown as
/// (empty for the document itself): paths are made for every value read, and shown only
/// in problems and rule names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path {
    text: String,
}

impl Path {
    /// The document itself.
    pub fn root() -> Path {
        Path::default()
    }

    /// The member `key` of this object: `.key` (no dot first) when the key is plain,
    /// else `["key"]` as a JSON string.
    pub fn key(&self, key: &str) -> Path {
        let mut text = self.text.clone();
        if is_plain_key(key) {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(key);
        } else {
            text.push('[');
            crate::reply::push_json_string(&mut text, key);
            text.push(']');
        }
        Path { text }
    }

    /// The element `index` of this array.
    pub fn index(&self, index: usize) -> Path {
        let mut text = self.text.clone();
        text.push('[');
        crate::digits::push_decimal(&mut text, u64::try_from(index).unwrap_or(u64::MAX));
        text.push(']');
        Path { text }
    }
}

impl Path {
    /// The path within the policy document (without the settings form's `policy.`), as
    /// denials name rules: the same whichever form the configuration takes.
    pub fn rule(&self) -> String {
        // A first key `policy` is the text `policy` followed by nothing, `.` or `[`.
        match self.text.strip_prefix("policy") {
            Some("") => Path::root().text(),
            Some(rest) if rest.starts_with('[') => rest.to_string(),
            Some(rest) => match rest.strip_prefix('.') {
                Some(r) => r.to_string(),
                None => self.text(),
            },
            None => self.text(),
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
    /// The path as shown: `tools.cache_cas.limits[0].window`, `configuration` for the
    /// document itself.
    pub fn text(&self) -> String {
        if self.text.is_empty() {
            return "configuration".into();
        }
        self.text.clone()
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

    #[test]
    fn rules_leave_out_the_policy_key() {
        let policy = Path::root().key("policy");
        assert_eq!(policy.key("tools").key("a").rule(), "tools.a");
        assert_eq!(policy.key("a b").rule(), "[\"a b\"]");
        assert_eq!(policy.index(3).rule(), "[3]");
        assert_eq!(policy.rule(), "configuration");
        assert_eq!(Path::root().rule(), "configuration");
        assert_eq!(Path::root().key("policyx").key("y").rule(), "policyx.y");
        assert_eq!(Path::root().key("tools").index(0).rule(), "tools[0]");
        assert_eq!(Path::root().key("policy.x").rule(), "[\"policy.x\"]");
    }
}
