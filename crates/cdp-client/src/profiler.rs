//! `Profiler` and `HeapProfiler` domains: CPU profiles, heap snapshots, heap usage.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::Inspector;

/// `Runtime.getHeapUsage`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapUsage {
    /// Bytes used by live and not-yet-collected objects on the V8 heap. (Buffer and
    /// ArrayBuffer contents live outside it.)
    pub used_size: u64,
    /// Bytes the V8 heap has reserved.
    pub total_size: u64,
}

/// Chunks of a heap snapshot held in memory at most while streaming it to disk.
const SNAPSHOT_CHUNKS_IN_FLIGHT: usize = 16;

impl Inspector {
    /// Run `work` while V8's sampling CPU profiler samples every `sampling_interval`, and return
    /// the profile (`Profiler.stop`'s `profile`, the `.cpuprofile` format) with `work`'s output.
    /// The profiler calls have this handle's timeout; `work` has whatever it brings.
    pub async fn profile_while<F, T>(
        &self,
        sampling_interval: Duration,
        work: F,
    ) -> Result<(Value, T)>
    where
        F: Future<Output = T>,
    {
        let micros = sampling_interval.as_micros().max(1);
        let start = async {
            self.call("Profiler.enable", json!({})).await?;
            self.call(
                "Profiler.setSamplingInterval",
                json!({ "interval": micros }),
            )
            .await?;
            self.call("Profiler.start", json!({})).await
        };
        start.await.map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "starting the CPU profiler (sampling every {}µs)",
                micros
            ))
        })?;
        let output = work.await;
        let reply = self
            .call("Profiler.stop", json!({}))
            .await
            .map_err(|e| anyhow::Error::new(e).context("stopping the CPU profiler"))?;
        let _ = self.call("Profiler.disable", json!({})).await;
        let profile = reply
            .get("profile")
            .cloned()
            .ok_or_else(|| anyhow!("stopping the CPU profiler: the reply has no profile"))?;
        Ok((profile, output))
    }

    /// Write a heap snapshot to `out` (created or truncated), streaming the
    /// `HeapProfiler.addHeapSnapshotChunk` events straight to the file, and return the bytes
    /// written. The snapshot must finish within this handle's timeout (`with_timeout` for big
    /// heaps; the process is blocked while V8 writes it). On failure the partial file is removed.
    pub async fn take_heap_snapshot(&self, out: &Path) -> Result<u64> {
        let doing = || format!("taking a heap snapshot into {}", out.display());
        let result = self.stream_heap_snapshot(out).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(out).await;
        }
        result.with_context(doing)
    }

    async fn stream_heap_snapshot(&self, out: &Path) -> Result<u64> {
        let file = tokio::fs::File::create(out)
            .await
            .with_context(|| format!("creating {}", out.display()))?;
        let mut file = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        // Bounded: when the file falls behind, the reader task waits, and the socket pushes back.
        let mut chunks = self.conn.subscribe(
            Box::new(|m| m == "HeapProfiler.addHeapSnapshotChunk"),
            Some(SNAPSHOT_CHUNKS_IN_FLIGHT),
        );
        let call = self.call(
            "HeapProfiler.takeHeapSnapshot",
            json!({ "reportProgress": false }),
        );
        tokio::pin!(call);
        let mut written: u64 = 0;
        let mut write = async |event: super::Event| -> Result<()> {
            let chunk = event
                .params
                .get("chunk")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("a snapshot chunk event without a chunk string"))?;
            file.write_all(chunk.as_bytes())
                .await
                .with_context(|| format!("writing {}", out.display()))?;
            written += chunk.len() as u64;
            Ok(())
        };
        loop {
            tokio::select! {
                // Chunks first: every chunk is queued before the reply that ends the snapshot.
                biased;
                event = chunks.recv() => match event {
                    Some(event) => write(event).await?,
                    None => { (&mut call).await?; break; }
                },
                reply = &mut call => { reply?; break; }
            }
        }
        while let Some(event) = chunks.try_recv() {
            write(event).await?;
        }
        file.flush()
            .await
            .with_context(|| format!("writing {}", out.display()))?;
        if written == 0 {
            return Err(anyhow!("the inspector sent no snapshot chunks"));
        }
        Ok(written)
    }

    /// `Runtime.getHeapUsage`.
    pub async fn heap_usage(&self) -> Result<HeapUsage> {
        let reply = self
            .call("Runtime.getHeapUsage", json!({}))
            .await
            .map_err(|e| anyhow::Error::new(e).context("reading the V8 heap usage"))?;
        let field = |name: &str| {
            reply
                .get(name)
                .and_then(Value::as_f64)
                .filter(|n| n.is_finite() && *n >= 0.0)
                .map(|n| n as u64)
                .ok_or_else(|| anyhow!("reading the V8 heap usage: no {name} in {reply}"))
        };
        Ok(HeapUsage {
            used_size: field("usedSize")?,
            total_size: field("totalSize")?,
        })
    }

    /// `HeapProfiler.collectGarbage`: a full GC in the inspected process.
    pub async fn collect_garbage(&self) -> Result<()> {
        self.call("HeapProfiler.collectGarbage", json!({}))
            .await
            .map_err(|e| {
                anyhow::Error::new(e).context("collecting garbage in the inspected process")
            })?;
        Ok(())
    }
}

/// Save a profile from [`Inspector::profile_while`] as a `.cpuprofile` file (what Chrome
/// DevTools and speedscope open). Returns the bytes written.
pub async fn save_cpuprofile(profile: &Value, path: &Path) -> Result<u64> {
    let bytes = serde_json::to_vec(profile).context("serialising the CPU profile")?;
    tokio::fs::write(path, &bytes)
        .await
        .with_context(|| format!("writing the CPU profile to {}", path.display()))?;
    Ok(bytes.len() as u64)
}
