//! `--format json`: one JSON object per event, one per line, for tools (documented in
//! docs/events.md). Each line carries the version of its shape (`"v": 1`) and the milliseconds since
//! the stream began (`"ms"`), then the event's own fields.

use std::io::Write;
use std::time::Instant;

use serde::Serialize;

use super::events::{EVENTS_VERSION, Event, Reporter};

pub struct JsonReporter {
    out: Box<dyn Write + Send>,
    started: Instant,
}

impl JsonReporter {
    pub fn new(out: Box<dyn Write + Send>) -> JsonReporter {
        JsonReporter {
            out,
            started: Instant::now(),
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    v: u32,
    ms: u64,
    #[serde(flatten)]
    event: &'a Event,
}

impl Reporter for JsonReporter {
    fn event(&mut self, event: &Event) {
        let line = Line {
            v: EVENTS_VERSION,
            ms: self.started.elapsed().as_millis() as u64,
            event,
        };
        // An event always serialises (strings, numbers and lists only); a reader that went away
        // (a closed pipe) is not the run's failure.
        if let Ok(text) = serde_json::to_string(&line) {
            let _ = writeln!(self.out, "{text}");
            let _ = self.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_event_is_one_line_with_its_version_and_name_first() {
        let out = Shared::default();
        let mut reporter = JsonReporter::new(Box::new(out.clone()));
        reporter.event(&Event::Interrupted {
            why: "interrupted (Ctrl-C)".into(),
        });
        reporter.event(&Event::RunFinished {
            passed: 1,
            failed: 0,
            duration_ms: 5,
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["v"], 1);
        assert_eq!(lines[0]["event"], "interrupted");
        assert_eq!(lines[1]["event"], "run_finished");
        assert_eq!(lines[1]["passed"], 1);
        assert!(text.starts_with("{\"v\":1,\"ms\":"), "{text}");
    }
}
