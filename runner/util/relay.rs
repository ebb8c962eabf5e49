//! Carrying TCP connections on: every connection a listener accepts is joined, both ways, to a new
//! connection to a target (`lab-runner forward` inside a terminal container, and the host's mirror
//! of a terminal's tunnel port).

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// How long a connection to the target may take to open; a connection whose target does not
/// answer in time is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Carries each connection `listener` accepts to `target` (`host:port`, resolved for each
/// connection, so a recreated container is found again by its name), until the task is dropped.
pub async fn carry(listener: TcpListener, target: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            // Out of file descriptors, say: a moment, then go on.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(Ok(mut outbound)) =
                tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target)).await
            {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
