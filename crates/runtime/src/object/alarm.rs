//! Running an object's alarm: at least once, with Cloudflare's retry schedule.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dormouse_sdk::AlarmInfo;

use super::guard::{Outcome, guard};
use super::task::Runner;
use crate::alarms::now_ms;
use crate::config::{ALARM_RETRIES, ALARM_WALL_TIME};

/// An alarm due within this many milliseconds runs now rather than being scheduled again.
const EARLY_TOLERANCE_MS: i64 = 5;

impl Runner {
    /// The alarm set for `scheduled_ms` is due (attempt `retry + 1`). The object's database
    /// decides: the alarm may have been deleted or moved since it was scheduled.
    pub(super) async fn handle_alarm(&mut self, scheduled_ms: i64, retry: u32) {
        if self.start_turn().await.is_err() {
            return self.after_failed_alarm(scheduled_ms, retry);
        }
        let context = self.context_host_concrete();
        let storage = match context.open_storage() {
            Ok(storage) => storage,
            Err(error) => {
                tracing::error!(%error, "cannot open storage to run the alarm");
                let _ = self.finish_turn().await;
                return;
            }
        };
        let stored = storage.stored_alarm();
        let at = match stored {
            Ok(Some(at)) => at,
            // Deleted since it was scheduled; or unreadable (reported to the log).
            Ok(None) | Err(_) => {
                if let Err(error) = stored {
                    tracing::error!(%error, "cannot read the alarm");
                }
                let _ = self.finish_turn().await;
                return;
            }
        };
        if at > now_ms() + EARLY_TOLERANCE_MS {
            // Moved to a later time: come back then.
            let _ = self.finish_turn().await;
            self.shared.alarms.set(&self.cell, Some(at));
            return;
        }
        // A retry of an alarm that was moved meanwhile counts as a first attempt.
        let retry = if at == scheduled_ms { retry } else { 0 };
        if retry > ALARM_RETRIES {
            tracing::error!(
                scheduled_ms = at,
                "alarm failed {ALARM_RETRIES} retries; giving it up"
            );
            let _ = storage.clear_fired_alarm(at);
            let _ = self.finish_turn().await;
            return;
        }
        let info = AlarmInfo {
            scheduled_time: UNIX_EPOCH + Duration::from_millis(at.max(0) as u64),
            retry_count: retry,
            is_retry: retry > 0,
        };
        storage.set_alarm_running(true);
        self.cell.namespace.metrics.alarms.fetch_add(1, Relaxed);
        let instance = self.instance.as_mut().expect("a turn has an instance");
        let outcome = guard(context, instance.alarm(info), Some(ALARM_WALL_TIME)).await;
        storage.set_alarm_running(false);
        let broken = self.reset_if_broken().await;
        let succeeded = !broken && matches!(outcome, Outcome::Done(Ok(())));
        match outcome {
            Outcome::Done(Ok(())) => {
                // Done: delete it, unless the handler set another one.
                if let Err(error) = storage.clear_fired_alarm(at) {
                    tracing::error!(%error, "cannot delete the alarm that ran");
                }
            }
            Outcome::Done(Err(error)) => {
                tracing::warn!(%error, retry, "alarm handler returned an error")
            }
            Outcome::Panicked(message) => {
                self.reset(&format!("alarm handler panicked: {message}"))
                    .await
            }
            Outcome::TimedOut => {
                self.reset(&format!(
                    "alarm handler ran longer than {ALARM_WALL_TIME:?}"
                ))
                .await
            }
        }
        let committed = self.finish_turn().await.is_ok();
        if !(succeeded && committed) {
            self.after_failed_alarm(at, retry);
        }
    }

    /// Schedules the next attempt: after the base delay doubled per retry (2 s, 4 s, 8 s, …), plus
    /// up to 25% jitter; after the last retry, one more delivery only deletes the alarm.
    fn after_failed_alarm(&mut self, at: i64, retry: u32) {
        let next = retry + 1;
        let delay = if next > ALARM_RETRIES {
            Duration::ZERO
        } else {
            let base = self.shared.config.alarm_retry_delay * (1 << (next - 1));
            base + base.mul_f64(jitter() * 0.25)
        };
        self.cell
            .namespace
            .metrics
            .alarm_retries
            .fetch_add(1, Relaxed);
        self.shared.alarms.retry(self.cell.key(), at, next, delay);
    }

    fn context_host_concrete(&self) -> std::sync::Arc<super::ObjectContext> {
        self.context
            .clone()
            .expect("context exists with the instance")
    }
}

/// A random fraction in [0, 1).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes = nanos.to_le_bytes();
    }
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}
