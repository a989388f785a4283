//! Hearing what other nodes commit: one connection per store that `LISTEN`s
//! on the store's channel, on a thread of its own, for the store's life.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio_postgres::{AsyncMessage, NoTls};
use store::News;

/// Heard news goes to this.
pub(crate) type Heard = Box<dyn Fn(News) + Send + Sync>;

/// How long the listener waits before it connects again after losing the database.
const RECONNECT: Duration = Duration::from_millis(500);
/// How often it looks whether its store is gone.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// What the listener needs: where to connect, the channel, which news is
/// its own node's (not heard), and whether the store still lives.
pub(crate) struct Listener {
    pub config: tokio_postgres::Config,
    pub channel: String,
    pub origin: String,
    pub listening: Arc<AtomicBool>,
}

impl Listener {
    /// Runs on a thread of its own until the store is dropped. After a
    /// connection was lost (news may have been missed meanwhile), the first
    /// thing heard once connected again is [`News::EVERYTHING`].
    pub fn spawn(self, heard: Heard) -> std::io::Result<()> {
        std::thread::Builder::new().name("baton-listen".into()).spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            let mut missed = false;
            while self.listening.load(Ordering::SeqCst) {
                let connected = runtime.block_on(self.listen(&heard, missed));
                missed = true;
                if connected.is_err() {
                    std::thread::sleep(RECONNECT);
                }
            }
        })?;
        Ok(())
    }

    /// One connection's life: `LISTEN`, then each notification to `heard`,
    /// until the connection breaks or the store goes.
    async fn listen(&self, heard: &Heard, missed: bool) -> Result<(), tokio_postgres::Error> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
        // The connection's messages are polled here; notifications go to `received`.
        let driver = tokio::spawn(async move {
            let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(notification)) => {
                        if sender.send(notification.payload().to_string()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let quoted = self.channel.replace('"', "\"\"");
        client.batch_execute(&format!("LISTEN \"{quoted}\"")).await?;
        if missed {
            heard(News::EVERYTHING);
        }
        loop {
            if !self.listening.load(Ordering::SeqCst) {
                driver.abort();
                return Ok(());
            }
            let next = tokio::time::timeout(CHECK_EVERY, received.recv()).await;
            match next {
                Ok(Some(payload)) => {
                    let (letters, origin) = payload.split_once(' ').unwrap_or((payload.as_str(), ""));
                    if origin != self.origin {
                        heard(News::from_letters(letters));
                    }
                }
                // The connection ended.
                Ok(None) => return Ok(()),
                // Quiet: look again whether the store still lives.
                Err(_) => {}
            }
        }
    }
}
