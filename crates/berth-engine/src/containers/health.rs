//! Health checks: the container's `Healthcheck` run as a probe process in
//! it every interval, its results kept in `State.Health` (the last five,
//! as Docker keeps), `healthy` once one passes, `unhealthy` after
//! `Retries` failures in a row (failures in the start period not counted).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::exec::{ExecConfig, process_for};
use super::{Container, Containers};
use berth_shim::protocol::stream;

/// Docker's default interval, timeout and retries.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// Output kept per probe.
const MAX_OUTPUT: usize = 4096;

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    /// Failures in a row.
    pub failing_streak: u32,
    /// The last probes.
    pub log: Vec<Probe>,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    /// When it started.
    pub start: String,
    /// When it ended.
    pub end: String,
    /// Its exit code (-1: it could not run or timed out).
    pub exit_code: i32,
    /// Its output, cut at 4 KiB.
    pub output: String,
}

/// A health check as configured.
struct Check {
    args: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    retries: u32,
}

fn duration(v: &Value, key: &str, default: Duration) -> Duration {
    match v.get(key).and_then(Value::as_i64) {
        Some(n) if n > 0 => Duration::from_nanos(n as u64),
        _ => default,
    }
}

fn check_of(config: &Value) -> Option<Check> {
    let test: Vec<String> = serde_json::from_value(config.get("Test")?.clone()).ok()?;
    let args = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None,
    };
    if args.is_empty() {
        return None;
    }
    Some(Check {
        args,
        interval: duration(config, "Interval", DEFAULT_INTERVAL),
        timeout: duration(config, "Timeout", DEFAULT_TIMEOUT),
        start_period: duration(config, "StartPeriod", Duration::ZERO),
        retries: config
            .get("Retries")
            .and_then(Value::as_u64)
            .filter(|r| *r > 0)
            .map_or(DEFAULT_RETRIES, |r| r as u32),
    })
}

impl Containers {
    /// Starts probing `c` (just started) when it has a health check.
    pub(super) fn start_health(self: &Arc<Self>, c: &Arc<Container>) {
        let rec = c.record();
        let Some(check) = rec.config.healthcheck.as_ref().and_then(check_of) else {
            return;
        };
        let started = rec.state.started_at.clone();
        let _ = c.update(|r| {
            r.state.health = Some(Health {
                status: "starting".into(),
                ..Health::default()
            })
        });
        let this = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let begun = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(check.interval).await;
                let rec = c.record();
                if c.removed() || !rec.state.running || rec.state.started_at != started {
                    return;
                }
                if rec.state.paused {
                    continue;
                }
                let probe = this.probe(&c, &check).await;
                let in_start_period = begun.elapsed() < check.start_period;
                let mut changed_to = None;
                let _ = c.update(|r| {
                    let h = r.state.health.get_or_insert_with(Health::default);
                    let before = h.status.clone();
                    if probe.exit_code == 0 {
                        h.failing_streak = 0;
                        h.status = "healthy".into();
                    } else if !in_start_period || h.status != "starting" {
                        h.failing_streak += 1;
                        if h.failing_streak >= check.retries {
                            h.status = "unhealthy".into();
                        }
                    }
                    h.log.push(probe.clone());
                    if h.log.len() > 5 {
                        h.log.remove(0);
                    }
                    if h.status != before {
                        changed_to = Some(h.status.clone());
                    }
                });
                if let Some(status) = changed_to {
                    this.event(&c, &format!("health_status: {status}"), &[]);
                }
            }
        });
    }

    /// Runs one probe: its exit code and output, or -1 when it could not
    /// run or outlived the timeout.
    async fn probe(&self, c: &Arc<Container>, check: &Check) -> Probe {
        let start = berth_model::time::now_rfc3339_nanos();
        let config = ExecConfig {
            cmd: Some(check.args.clone()),
            attach_stdout: true,
            attach_stderr: true,
            ..ExecConfig::default()
        };
        let run = async {
            let process = process_for(c, &config, false).map_err(|e| e.message)?;
            let (_, mut conn) = self.shim(c).exec(process, false).await?;
            let mut output = Vec::new();
            loop {
                let Some((s, data)) = super::stdio::read_frame(&mut conn).await else {
                    return Err("the probe's stream ended without its exit".to_owned());
                };
                if s == stream::EXIT && data.len() == 4 {
                    let code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                    return Ok((code, output));
                }
                let room = MAX_OUTPUT.saturating_sub(output.len());
                output.extend_from_slice(&data[..data.len().min(room)]);
            }
        };
        let (exit_code, output) = match tokio::time::timeout(check.timeout, run).await {
            Ok(Ok((code, out))) => (code, String::from_utf8_lossy(&out).into_owned()),
            Ok(Err(e)) => (-1, e),
            Err(_) => (
                -1,
                format!("Health check exceeded timeout ({:?})", check.timeout),
            ),
        };
        Probe {
            start,
            end: berth_model::time::now_rfc3339_nanos(),
            exit_code,
            output,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_parse_as_docker_writes_them() {
        let c = check_of(&serde_json::json!({
            "Test": ["CMD-SHELL", "test -f /ready"], "Interval": 500_000_000i64, "Retries": 2
        }))
        .unwrap();
        assert_eq!(c.args, vec!["/bin/sh", "-c", "test -f /ready"]);
        assert_eq!(c.interval, Duration::from_millis(500));
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.retries, 2);
        assert!(check_of(&serde_json::json!({ "Test": ["NONE"] })).is_none());
        let c = check_of(&serde_json::json!({ "Test": ["CMD", "true"] })).unwrap();
        assert_eq!(c.args, vec!["true"]);
    }
}
