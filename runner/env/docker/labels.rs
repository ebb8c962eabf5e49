//! Labels on everything the runner creates, so cleanup can always find it.

use std::collections::HashMap;

/// Present on every container, network and image the runner creates.
pub const MANAGED: &str = "io.lab-runner.managed";
pub const SESSION: &str = "io.lab-runner.session";
pub const LAB: &str = "io.lab-runner.lab";
pub const PART: &str = "io.lab-runner.part";
/// The pid of the runner that created the object (for finding orphans of a killed runner).
pub const RUNNER_PID: &str = "io.lab-runner.runner-pid";
pub const CONTENT_HASH: &str = "io.lab-runner.content-hash";
pub const IMAGE_SOURCE: &str = "io.lab-runner.image-source";
/// On a lab service's container (not the app's): the service's name.
pub const SERVICE: &str = "io.lab-runner.service";
/// On a participant's terminal container (`terminal.rs`), which is not the lab's app either.
pub const TERMINAL: &str = "io.lab-runner.terminal";

/// Labels for a session's container or network.
pub fn for_session(lab: &str, part: &str, session: &str) -> HashMap<String, String> {
    HashMap::from([
        (MANAGED.to_string(), "true".to_string()),
        (SESSION.to_string(), session.to_string()),
        (LAB.to_string(), lab.to_string()),
        (PART.to_string(), part.to_string()),
        (RUNNER_PID.to_string(), std::process::id().to_string()),
    ])
}

/// Labels for a lab service's container: the session's, and the service's name.
pub fn for_service(lab: &str, part: &str, session: &str, service: &str) -> HashMap<String, String> {
    let mut labels = for_session(lab, part, session);
    labels.insert(SERVICE.to_string(), service.to_string());
    labels
}

/// A Docker list filter on `label=key=value`.
pub fn filter(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    )])
}
