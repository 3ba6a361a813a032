//! The baseline of `bench/nats.sh`: how fast plain async-nats publishes to and consumes
//! from JetStream on the same server, with nothing of switchboard in the way.
//!
//!     cargo run --release -p switchboard-nats --example raw_rate -- nats://127.0.0.1:4222 50000
//!     cargo run --release -p switchboard-nats --example raw_rate -- nats://127.0.0.1:4222 50000 raw-2
//!
//! Publishes COUNT small JSON messages to `raw.user_joined` (stream `RAW`), each with a
//! `Nats-Msg-Id`, first one at a time (each waiting for its acknowledgement, as a caller
//! of `switchboard emit` does) and then with up to 256 acknowledgements outstanding; then
//! pulls all of them through a durable consumer, acknowledging each. Prints events/s.
//! Given a consumer's name as well, it only consumes COUNT of what `RAW` holds through a
//! new durable consumer of that name (`bench/nats.sh` does so in each of its rounds).
//! Given a file after the name, it also does the work a switchboard consumer does to
//! keep its promise that a completed event is not run again: it looks each message's
//! id up in the set of completed ids, checks the two declared string arguments, and
//! appends the id to the file (one `write`) before it acknowledges.

use std::io::Write;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
    let count: usize = args.next().map_or(Ok(50_000), |n| n.parse())?;
    let only_consume_as = args.next();
    let journal = args.next();
    let client = async_nats::connect(&url).await?;
    let js = jetstream::new(client);
    let stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: "RAW".to_owned(),
            subjects: vec!["raw.>".to_owned()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?;
    if let Some(durable) = only_consume_as {
        let consuming = consume(&stream, &durable, count, journal.as_deref()).await?;
        println!("raw async-nats: consume {consuming:.0}/s");
        return Ok(());
    }
    let payload =
        |n: usize| format!(r#"{{"name":"user{n}","email":"user{n}@example.com"}}"#).into_bytes();
    let publish = |n: usize| {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("raw-{n}"));
        js.publish_with_headers("raw.user_joined", headers, payload(n).into())
    };

    // One at a time: the latency-bound rate.
    let half = count / 2;
    let started = Instant::now();
    for n in 0..half {
        publish(n).await?.await?;
    }
    let one_at_a_time = half as f64 / started.elapsed().as_secs_f64();

    // Up to 256 outstanding acknowledgements: the throughput-bound rate.
    let started = Instant::now();
    let mut waiting = std::collections::VecDeque::new();
    for n in half..count {
        waiting.push_back(publish(n).await?);
        if waiting.len() == 256 {
            if let Some(oldest) = waiting.pop_front() {
                oldest.await?;
            }
        }
    }
    for ack in waiting {
        ack.await?;
    }
    let pipelined = (count - half) as f64 / started.elapsed().as_secs_f64();

    let consuming = consume(&stream, "raw", count, None).await?;
    println!(
        "raw async-nats: publish one at a time {one_at_a_time:.0}/s, publish 256 in flight {pipelined:.0}/s, consume {consuming:.0}/s"
    );
    Ok(())
}

/// Consumes `count` messages of `stream` through a new durable consumer `durable`,
/// reading each one's JSON and acknowledging it (after the work of a completed-id
/// journal, given its file); events/s from the consumer's creation.
async fn consume(
    stream: &jetstream::stream::Stream,
    durable: &str,
    count: usize,
    journal: Option<&str>,
) -> Result<f64, Box<dyn std::error::Error>> {
    let mut journal = match journal {
        Some(path) => Some((
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
            std::collections::HashSet::<String>::new(),
        )),
        None => None,
    };
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_owned()),
            max_ack_pending: 256,
            ..Default::default()
        })
        .await?;
    let started = Instant::now();
    let mut messages = consumer.messages().await?;
    let mut consumed = 0;
    while consumed < count {
        let Some(message) = messages.next().await else {
            break;
        };
        let message = message.map_err(|e| e.to_string())?;
        let args: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&message.payload)?;
        if let Some((file, completed)) = &mut journal {
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .ok_or("a message without an id")?;
            let declared = ["name", "email"]
                .iter()
                .all(|name| args.get(*name).is_some_and(|v| v.is_string()));
            if !completed.contains(&id) && declared {
                file.write_all(format!("{id}\n").as_bytes())?;
                completed.insert(id);
            }
        }
        message.ack().await.map_err(|e| e.to_string())?;
        consumed += 1;
    }
    Ok(consumed as f64 / started.elapsed().as_secs_f64())
}
