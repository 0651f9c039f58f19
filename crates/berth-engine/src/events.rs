//! `GET /events`: what happened to containers, images and volumes, kept
//! in a ring of the last events (for `--since`) and broadcast live.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// How many past events are kept for `--since`.
const KEEP: usize = 1024;

/// One event, in Docker's shape.
#[derive(Debug, Clone)]
pub struct Event {
    /// `container`, `image`, `volume`.
    pub kind: &'static str,
    /// `create`, `start`, `die`, ...
    pub action: String,
    /// The object's id (or name, for volumes and images).
    pub id: String,
    /// Its attributes (`name`, `image`, `exitCode`, ...).
    pub attributes: BTreeMap<String, String>,
    /// When, in nanoseconds since the epoch.
    pub time_nano: i64,
}

impl Event {
    /// Docker's JSON.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.kind,
            "Action": self.action,
            "Actor": { "ID": self.id, "Attributes": self.attributes },
            "scope": "local",
            "time": self.time_nano / 1_000_000_000,
            "timeNano": self.time_nano,
        });
        // The fields of API versions before 1.22, which clients still read.
        if self.kind == "container" {
            v["status"] = json!(self.action);
            v["id"] = json!(self.id);
            v["from"] = json!(self.attributes.get("image").cloned().unwrap_or_default());
        }
        v
    }

    /// Whether it passes Docker's event filters.
    pub fn matches(&self, filters: &[(String, String)]) -> bool {
        let mut keys: BTreeMap<&str, bool> = BTreeMap::new();
        for (k, v) in filters {
            let hit = match k.as_str() {
                "type" => self.kind == v,
                "event" | "action" => {
                    self.action == *v || self.action.split(':').next() == Some(v.as_str())
                }
                "container" if self.kind == "container" => {
                    self.id.starts_with(v.as_str())
                        || self.attributes.get("name").is_some_and(|n| n == v)
                }
                "image" => {
                    self.attributes.get("image").is_some_and(|i| i == v)
                        || (self.kind == "image" && self.id == *v)
                }
                "volume" if self.kind == "volume" => self.id == *v,
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => self.attributes.get(lk).is_some_and(|x| x == lv),
                    None => self.attributes.contains_key(v.as_str()),
                },
                _ => false,
            };
            *keys.entry(k.as_str()).or_insert(false) |= hit;
        }
        keys.values().all(|h| *h)
    }
}

/// The event hub.
#[derive(Debug)]
pub struct Events {
    past: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Events {
        Events {
            past: Mutex::new(VecDeque::with_capacity(KEEP)),
            live: broadcast::channel(KEEP).0,
        }
    }
}

impl Events {
    /// Records and broadcasts an event.
    pub fn emit(
        &self,
        kind: &'static str,
        action: impl Into<String>,
        id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) {
        let time_nano = berth_model::time::unix_now().as_nanos() as i64;
        let e = Event {
            kind,
            action: action.into(),
            id: id.into(),
            attributes,
            time_nano,
        };
        let mut past = self.past.lock().expect("events lock");
        if past.len() == KEEP {
            past.pop_front();
        }
        past.push_back(e.clone());
        let _ = self.live.send(e);
    }

    /// The kept events since `since_nano`, and a receiver of those to come
    /// (subscribed first, so none falls between).
    pub fn subscribe(&self, since_nano: Option<i64>) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let past = self.past.lock().expect("events lock");
        let rx = self.live.subscribe();
        let old = match since_nano {
            Some(s) => past.iter().filter(|e| e.time_nano >= s).cloned().collect(),
            None => Vec::new(),
        };
        (old, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_kept_filtered_and_shaped_as_dockers() {
        let events = Events::default();
        let attrs = |name: &str| {
            BTreeMap::from([
                ("name".to_owned(), name.to_owned()),
                ("image".to_owned(), "busybox".to_owned()),
            ])
        };
        events.emit("container", "create", "abc", attrs("one"));
        events.emit("container", "start", "abc", attrs("one"));
        events.emit("volume", "create", "data", BTreeMap::new());
        let (past, _) = events.subscribe(Some(0));
        assert_eq!(past.len(), 3);
        let f = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(
            past.iter()
                .filter(|e| e.matches(&f("type", "container")))
                .count(),
            2
        );
        assert_eq!(
            past.iter()
                .filter(|e| e.matches(&f("event", "start")))
                .count(),
            1
        );
        assert_eq!(
            past.iter()
                .filter(|e| e.matches(&f("container", "one")))
                .count(),
            2
        );
        assert_eq!(
            past.iter()
                .filter(|e| e.matches(&f("volume", "data")))
                .count(),
            1
        );
        let j = past[1].to_json();
        assert_eq!(j["Action"], "start");
        assert_eq!(j["Actor"]["Attributes"]["name"], "one");
        assert_eq!(j["status"], "start");
        let (none, _) = events.subscribe(None);
        assert!(none.is_empty());
    }
}
