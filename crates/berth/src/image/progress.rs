//! Docker's transfer display: one line per layer, `<id>: <status>`, redrawn
//! in place with a progress bar on a terminal, and each status change on
//! its own line otherwise (as `docker pull | cat` prints).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

/// The width of the bar between the brackets.
const BAR_WIDTH: usize = 50;

/// A live display of per-layer statuses.
pub struct ProgressView {
    tty: bool,
    /// A status no later one replaces (`Pull complete`).
    last: Option<&'static str>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    order: Vec<String>,
    lines: HashMap<String, String>,
    drawn: usize,
}

impl ProgressView {
    /// A display, drawn live when `tty`, where `last` is final.
    pub fn new(tty: bool, last: Option<&'static str>) -> ProgressView {
        ProgressView {
            tty,
            last,
            state: Mutex::new(State::default()),
        }
    }

    /// Shows a layer's status, with a bar while it moves (on a terminal;
    /// elsewhere progress is not printed, as Docker does).
    pub fn layer(&self, id: &str, status: &str, progress: Option<(u64, u64)>) {
        match progress {
            Some((current, total)) if self.tty => {
                self.set(id, format!("{status} {}", bar(current, total)))
            }
            Some(_) => {}
            None => self.set(id, status.to_owned()),
        }
    }

    /// Sets the status line of `id`.
    pub fn set(&self, id: &str, status: String) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let current = state.lines.get(id);
        if current == Some(&status) || current.is_some_and(|c| Some(c.as_str()) == self.last) {
            return;
        }
        if !state.lines.contains_key(id) {
            state.order.push(id.to_owned());
        }
        state.lines.insert(id.to_owned(), status.clone());
        let mut out = std::io::stdout().lock();
        if self.tty {
            // Move up over what was drawn and draw every line again.
            if state.drawn > 0 {
                let _ = write!(out, "\x1b[{}A", state.drawn);
            }
            for id in &state.order {
                let _ = writeln!(out, "\x1b[2K{id}: {}", state.lines[id]);
            }
            state.drawn = state.order.len();
        } else {
            let _ = writeln!(out, "{id}: {status}");
        }
        let _ = out.flush();
    }
}

/// `[=====>      ]  1.049MB/2.23MB`, as Docker draws it.
fn bar(current: u64, total: u64) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((current.min(total) as u128 * BAR_WIDTH as u128) / total as u128) as usize
    };
    let mut bar = String::with_capacity(BAR_WIDTH + 2);
    bar.push('[');
    for i in 0..BAR_WIDTH {
        bar.push(match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal => '>',
            std::cmp::Ordering::Greater => ' ',
        });
    }
    bar.push(']');
    format!("{bar}  {}/{}", human_size(current), human_size(total))
}

/// A size as Docker's go-units writes it: decimal units and four
/// significant digits (`1.049MB`, `512B`, `2.23GB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit + 1 < UNITS.len() {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(size, 4), UNITS[unit])
}

/// `value` with at most `digits` significant digits and no trailing zeros
/// (Go's `%.4g` for the values sizes take).
fn significant(value: f64, digits: usize) -> String {
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    let mut s = format!("{value:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_048_576), "1.049MB");
        assert_eq!(human_size(2_230_000), "2.23MB");
        assert_eq!(human_size(4_400_000_000), "4.4GB");
        assert_eq!(human_size(999_999), "1000kB");
    }

    #[test]
    fn bars_fill_in_proportion() {
        let b = bar(50, 100);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert!(b.ends_with("50B/100B"), "{b}");
        assert!(bar(0, 0).starts_with("[>"));
    }
}
