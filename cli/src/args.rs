//! Command-line arguments.

/// Why a command could not run.
pub enum Failure {
    /// The command line is wrong.
    Usage(String),
    /// A file could not be read.
    Io(String),
}

/// Output formats.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Parsed arguments.
pub struct Args {
    /// Positional arguments.
    pub files: Vec<String>,
    pub format: Format,
    pub grant: Option<String>,
    pub session: Option<String>,
    pub headers: Vec<(String, String)>,
    pub address: String,
    pub at: Option<u64>,
    pub step: u64,
}

fn value<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<&'a String, Failure> {
    it.next()
        .ok_or_else(|| Failure::Usage(format!("{flag} needs a value")))
}

/// Parses everything after the command name.
pub fn parse(argv: &[String]) -> Result<Args, Failure> {
    let mut a = Args {
        files: Vec::new(),
        format: Format::Text,
        grant: None,
        session: None,
        headers: Vec::new(),
        address: "127.0.0.1".into(),
        at: None,
        step: 0,
    };
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--format" => {
                a.format = match value(&mut it, "--format")?.as_str() {
                    "text" => Format::Text,
                    "json" => Format::Json,
                    other => {
                        return Err(Failure::Usage(format!(
                            "--format {other:?}: expected text or json"
                        )))
                    }
                }
            }
            "--grant" => a.grant = Some(value(&mut it, "--grant")?.clone()),
            "--session" => a.session = Some(value(&mut it, "--session")?.clone()),
            "--address" => a.address = value(&mut it, "--address")?.clone(),
            "--header" => {
                let h = value(&mut it, "--header")?;
                let (k, v) = h.split_once(':').ok_or_else(|| {
                    Failure::Usage(format!("--header {h:?}: expected NAME:VALUE"))
                })?;
                a.headers
                    .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
            "--at" => {
                let t = value(&mut it, "--at")?;
                a.at = Some(crate::clock::parse_time(t).ok_or_else(|| {
                    Failure::Usage(format!(
                        "--at {t:?}: expected Unix seconds or a time like 2026-11-24T10:31:00Z"
                    ))
                })?);
            }
            "--step" => {
                let s = value(&mut it, "--step")?;
                a.step = s
                    .parse()
                    .map_err(|_| Failure::Usage(format!("--step {s:?}: expected whole seconds")))?;
            }
            flag if flag.starts_with("--") => {
                return Err(Failure::Usage(format!("unknown option {flag}")))
            }
            file => a.files.push(file.to_string()),
        }
    }
    Ok(a)
}

/// Reads a file, or standard input for `-`.
pub fn read(path: &str) -> Result<Vec<u8>, Failure> {
    if path == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Failure::Io(format!("standard input: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| Failure::Io(format!("{path}: {e}")))
}
