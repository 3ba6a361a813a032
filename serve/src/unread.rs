//! A request answered before its body was read (a 404 for an undeclared event, a 401, a
//! 413) leaves the rest of the body on the connection, and the server then closes it.
//! Such an answer says `Connection: close`, so that a client reusing connections opens a
//! new one instead of sending its next request into a closed one.
//!
//! This middleware watches the bodies of every route but `POST /events/{event}`, which
//! knows whether it read its body and marks its own answer (`routes::emit`).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};

/// Runs the route with the request's body watched; marks the answer `Connection: close`
/// when the route did not read the body to its end.
pub(crate) async fn close_if_unread(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let read = Arc::new(AtomicBool::new(false));
    let watched = Body::new(Watched {
        inner: body,
        read: Arc::clone(&read),
    });
    let mut response = next.run(Request::from_parts(parts, watched)).await;
    if !read.load(Ordering::Acquire) {
        close_after(&mut response);
    }
    response
}

/// Marks `response` as the last on its connection (`Connection: close`), which the server
/// then closes.
pub(crate) fn close_after(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// A body that records when it has been read to its end.
struct Watched {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
