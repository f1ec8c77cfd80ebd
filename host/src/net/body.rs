//! Bodies with a size cap and an idle timeout, for every HTTP exchange the
//! host makes on a guest's behalf.
//!
//! Policy: a body fails with its caller's error once more than `limit`
//! data bytes went through (the frame that crosses the limit is not handed
//! on), and, when an idle wait is set, once no frame came for that long.
//! After the cap error the body is over. What the caller's errors are is
//! the caller's (guest HTTP uses `wasi:http`'s), so this module knows no
//! runtime.

use std::any::Any;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep, sleep};

/// A body that fails with `over` once more than `limit` bytes went
/// through, and (with [`Self::idle`]) when no frame came for a while.
pub(crate) struct Capped<B, E> {
    inner: B,
    seen: u64,
    limit: u64,
    over: Option<E>,
    idle: Option<Idle<E>>,
    /// What this body's buffers hold (a host-memory charge), given back
    /// with the body.
    _held: Option<Box<dyn Any + Send>>,
}

/// The idle wait of a [`Capped`] body.
struct Idle<E> {
    wait: Duration,
    timer: Pin<Box<Sleep>>,
    stalled: fn() -> E,
}

impl<B, E> Capped<B, E> {
    /// `inner`, failing with `over` past `limit` bytes.
    pub(crate) fn new(inner: B, limit: u64, over: E) -> Self {
        Self {
            inner,
            seen: 0,
            limit,
            over: Some(over),
            idle: None,
            _held: None,
        }
    }

    /// Also fails with `stalled()` when no frame came for `wait`.
    pub(crate) fn idle(mut self, wait: Duration, stalled: fn() -> E) -> Self {
        self.idle = Some(Idle {
            wait,
            timer: Box::pin(sleep(wait)),
            stalled,
        });
        self
    }

    /// Keeps `held` for as long as the body lives.
    pub(crate) fn holding(mut self, held: impl Any + Send) -> Self {
        self._held = Some(Box::new(held));
        self
    }
}

impl<B, E> Body for Capped<B, E>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<E>,
    E: Unpin,
{
    type Data = Bytes;
    type Error = E;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, E>>> {
        let this = &mut *self;
        // `over` is taken when the cap is hit: the body is over then.
        if this.over.is_none() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if this.seen > this.limit {
                        return Poll::Ready(this.over.take().map(Err));
                    }
                }
                if let Some(idle) = &mut this.idle {
                    idle.timer.as_mut().reset(Instant::now() + idle.wait);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match &mut this.idle {
                Some(idle) => {
                    ready!(idle.timer.as_mut().poll(cx));
                    Poll::Ready(Some(Err((idle.stalled)())))
                }
                None => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    /// The caller's errors, as guest HTTP's are to it.
    #[derive(Debug, PartialEq)]
    enum Failed {
        Over(u64),
        Stalled,
    }

    impl From<std::convert::Infallible> for Failed {
        fn from(never: std::convert::Infallible) -> Self {
            match never {}
        }
    }

    #[tokio::test]
    async fn bodies_over_the_cap_fail() {
        let body = |n: usize| http_body_util::Full::new(Bytes::from(vec![b'x'; n]));
        let capped = Capped::new(body(9), 8, Failed::Over(8)).collect().await;
        assert_eq!(capped.err(), Some(Failed::Over(8)));
        let capped = Capped::new(body(8), 8, Failed::Over(8)).collect().await;
        assert_eq!(capped.unwrap().to_bytes().len(), 8);
    }

    /// A body that sends nothing for the idle wait fails as stalled, not
    /// before that wait.
    #[tokio::test]
    async fn a_silent_body_fails_after_the_idle_wait() {
        let silent = http_body_util::StreamBody::new(futures::stream::pending::<
            Result<Frame<Bytes>, std::convert::Infallible>,
        >());
        let start = Instant::now();
        let capped = Capped::new(silent, 8, Failed::Over(8))
            .idle(Duration::from_millis(200), || Failed::Stalled)
            .collect()
            .await;
        assert_eq!(capped.err(), Some(Failed::Stalled));
        assert!(start.elapsed() >= Duration::from_millis(200));
    }
}
