//! SIGTERM / SIGINT for the long-running front ends (`serve`, `autoscale run`, `autoscale local`).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGTERM and SIGINT handlers installed at [`Shutdown::install`]: a signal that comes before
/// [`Shutdown::recv`] is polled (e.g. while an iteration runs) is kept, not lost.
pub struct Shutdown {
    handlers: Option<(Signal, Signal)>,
}

impl Shutdown {
    /// Installs the handlers (within a Tokio runtime); Ctrl-C only when they cannot be.
    pub fn install() -> Shutdown {
        Shutdown {
            handlers: signal(SignalKind::terminate())
                .ok()
                .zip(signal(SignalKind::interrupt()).ok()),
        }
    }

    /// Resolves on the first SIGTERM or SIGINT since [`Shutdown::install`].
    pub async fn recv(&mut self) {
        match &mut self.handlers {
            Some((term, int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C when the handlers cannot be installed).
pub async fn shutdown_signal() {
    Shutdown::install().recv().await
}
