//! Limits from `smbdensity.conf`, layered the way Splunk layers .conf files: built-in defaults, then the
//! app's `default/smbdensity.conf`, then `local/smbdensity.conf`. Only the `[limits]` stanza is read.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// The limits a fit or apply enforces.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_groups: usize,
    pub max_fields_in_by_clause: usize,
    pub max_kde_parameter_size: usize,
    pub min_data_size_to_fit: u64,
    pub default_prob_threshold: f64,
    pub max_threshold_num: usize,
    pub max_model_size_mb: u64,
    pub max_chunk_size_mb: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_groups: 1_000_000,
            max_fields_in_by_clause: 8,
            max_kde_parameter_size: 10_000,
            min_data_size_to_fit: 50,
            default_prob_threshold: 0.01,
            max_threshold_num: 5,
            max_model_size_mb: 1024,
            max_chunk_size_mb: 1024,
        }
    }
}

impl Limits {
    /// The largest chunk (metadata + body) we accept from splunkd, in bytes.
    pub fn max_chunk_bytes(&self) -> u64 {
        self.max_chunk_size_mb.saturating_mul(1 << 20)
    }

    /// Reads `<app>/default/smbdensity.conf` then `<app>/local/smbdensity.conf` over the defaults.
    pub fn load(app_dir: Option<&Path>) -> Result<Limits, Error> {
        let mut limits = Limits::default();
        if let Some(app) = app_dir {
            for layer in ["default", "local"] {
                let path: PathBuf = app.join(layer).join("smbdensity.conf");
                match std::fs::read(&path) {
                    Ok(bytes) => limits.apply_conf(&String::from_utf8_lossy(&bytes), &path)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::Config(format!(
                            "cannot read {}: {e}",
                            path.display()
                        )));
                    }
                }
            }
        }
        Ok(limits)
    }

    /// Applies the `[limits]` stanza of one .conf text.
    pub fn apply_conf(&mut self, text: &str, path: &Path) -> Result<(), Error> {
        let mut in_limits = false;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                in_limits = line.trim_end() == "[limits]";
                continue;
            }
            if !in_limits {
                continue;
            }
            let bad =
                |why: &str| Error::Config(format!("{}:{}: {why}: {line}", path.display(), n + 1));
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| bad("expected key = value"))?;
            let (k, v) = (k.trim(), v.trim());
            let int = || {
                v.parse::<u64>()
                    .map_err(|_| bad("expected a non-negative integer"))
            };
            match k {
                "max_groups" => self.max_groups = int()? as usize,
                "max_fields_in_by_clause" => self.max_fields_in_by_clause = int()? as usize,
                "max_kde_parameter_size" => self.max_kde_parameter_size = int()?.max(2) as usize,
                "min_data_size_to_fit" => self.min_data_size_to_fit = int()?,
                "max_threshold_num" => self.max_threshold_num = int()? as usize,
                "max_model_size_mb" => self.max_model_size_mb = int()?,
                "max_chunk_size_mb" => self.max_chunk_size_mb = int()?,
                "default_prob_threshold" => {
                    self.default_prob_threshold = v
                        .parse::<f64>()
                        .ok()
                        .filter(|t| (1e-9..=1.0).contains(t))
                        .ok_or_else(|| bad("expected a probability between 0.000000001 and 1"))?
                }
                _ => return Err(bad("unknown setting")),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_overrides_default() {
        let mut l = Limits::default();
        l.apply_conf(
            "[limits]\nmax_groups = 5000\n[other]\nmax_groups = 1\n",
            Path::new("d"),
        )
        .unwrap();
        l.apply_conf("# comment\n[limits]\nmax_groups=7\n", Path::new("l"))
            .unwrap();
        assert_eq!(l.max_groups, 7);
        assert!(
            l.apply_conf("[limits]\nmax_groups = lots\n", Path::new("x"))
                .is_err()
        );
        assert!(
            l.apply_conf("[limits]\nbogus = 1\n", Path::new("x"))
                .is_err()
        );
    }
}
