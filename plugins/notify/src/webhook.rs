//! Posting `{"content": "..."}` to a chat webhook (the shape Discord expects).

use std::time::Duration;

/// A webhook client with a timeout.
pub struct Webhook {
    url: String,
    agent: ureq::Agent,
}

impl Webhook {
    /// A client for `url` that gives up after `timeout` (connect, read and write each).
    pub fn new(url: String, timeout: Duration) -> Webhook {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout)
            .timeout(timeout)
            .build();
        Webhook { url, agent }
    }

    /// The webhook's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts `content`; any transport error or non-2xx status is an error naming the URL.
    pub fn post(&self, content: &str) -> Result<u16, String> {
        let body = serde_json::json!({ "content": content }).to_string();
        match self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json")
            .send_string(&body)
        {
            Ok(response) => Ok(response.status()),
            Err(ureq::Error::Status(code, response)) => Err(format!(
                "webhook {} answered {code} {}",
                self.url,
                response.status_text()
            )),
            Err(ureq::Error::Transport(e)) => {
                Err(format!("cannot reach webhook {}: {}", self.url, e.kind()))
            }
        }
    }
}

/// The chat line for a new user.
pub fn new_user_message(name: &str, email: &str) -> String {
    format!("📣 {name} ({email}) just joined")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// Accepts one request on 127.0.0.1, answers `status`, and returns the request body.
    fn one_request(status: &str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let status = status.to_owned();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            String::from_utf8(body).unwrap()
        });
        (url, handle)
    }

    #[test]
    fn posts_the_discord_shape() {
        let (url, server) = one_request("204 No Content");
        let hook = Webhook::new(url, Duration::from_secs(2));
        assert_eq!(hook.post("hello").unwrap(), 204);
        let body: serde_json::Value = serde_json::from_str(&server.join().unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"content": "hello"}));
    }

    #[test]
    fn an_error_status_names_the_url() {
        let (url, server) = one_request("500 Internal Server Error");
        let hook = Webhook::new(url.clone(), Duration::from_secs(2));
        let err = hook.post("hello").unwrap_err();
        server.join().unwrap();
        assert_eq!(
            err,
            format!("webhook {url} answered 500 Internal Server Error")
        );
    }

    #[test]
    fn an_unreachable_url_names_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        drop(listener);
        let err = Webhook::new(url.clone(), Duration::from_secs(2))
            .post("x")
            .unwrap_err();
        assert!(
            err.starts_with(&format!("cannot reach webhook {url}")),
            "{err}"
        );
    }
}
