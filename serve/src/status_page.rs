//! `GET /`: a status page for a person, rendered on the server as plain HTML with a little
//! CSS and no script: the plugins with their state and counts, the events with their
//! callbacks in dispatch order and the service's counts, what crossed to and from NATS, and the recent failures.

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::BTreeMap;
use switchboard::manifest::Isolation;

use switchboard::service::{Crossing, EventCounts};
use switchboard::Generation;

use crate::metrics::plugin_state;
use switchboard::service::Failure;

const STYLE: &str = "
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
p.lead { color: #555; margin-top: 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; color: #444; background: #fafafa; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 13px ui-monospace, monospace; }
.state { display: inline-block; padding: 0 .5rem; border-radius: .7rem; font-size: 13px; }
.on { background: #e3f6e8; color: #17632c; }
.switched_off, .quarantined { background: #fde8e8; color: #8a1c1c; }
.trial { background: #fff4d6; color: #7a5300; }
.off { background: #eee; color: #555; }
.none { color: #777; }
";

/// The page.
pub fn render(
    generation: &Generation,
    failures: &[Failure],
    uptime: Duration,
    listening: &str,
    queue_depth: usize,
    counts: &BTreeMap<String, EventCounts>,
    crossings: &[(String, Crossing, u64)],
) -> String {
    let mut page = String::with_capacity(8 * 1024);
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>switchboard: status</title><style>{STYLE}</style></head><body>\n\
         <h1>switchboard</h1>\n<p class=\"lead\">Serving on {} &middot; generation {} &middot; up {} &middot; {} event(s) waiting &middot; <a href=\"/metrics\">metrics</a></p>\n",
        escape(listening),
        generation.number(),
        since(uptime),
        queue_depth,
    );
    plugins(&mut page, generation);
    events(&mut page, generation, counts);
    nats(&mut page, crossings);
    recent(&mut page, failures);
    page.push_str("</body></html>\n");
    page
}

fn plugins(page: &mut String, generation: &Generation) {
    page.push_str(
        "<h2>Plugins</h2>\n<table><thead><tr><th>Plugin</th><th>Library</th><th>Runs</th>\
         <th>State</th><th class=\"n\">Calls</th><th class=\"n\">Failed</th>\
         <th class=\"n\">Skipped</th><th class=\"n\">Mean time</th></tr></thead><tbody>\n",
    );
    for plugin in generation.plugins() {
        let state = plugin_state(&plugin);
        let runs = match (&plugin.meta.isolation, &plugin.isolated) {
            (Isolation::Process, Some(isolated)) => format!(
                "{} worker process(es); {} crash(es), {} kill(s)",
                isolated.limits.processes, isolated.crashes, isolated.kills
            ),
            (Isolation::Process, None) => "worker processes".to_owned(),
            _ => "in-process".to_owned(),
        };
        let why = plugin
            .off_reason
            .clone()
            .or_else(|| plugin.isolated.as_ref().and_then(|i| i.quarantined.clone()))
            .map(|reason| format!("<br><small>{}</small>", escape(&reason)))
            .unwrap_or_default();
        let mean = plugin
            .counts
            .mean_nanos()
            .map_or("&ndash;".to_owned(), duration);
        let _ = writeln!(
            page,
            "<tr><td><b>{}</b></td><td><code>{}</code> {}</td><td>{}</td>\
             <td><span class=\"state {state}\">{}</span>{why}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{mean}</td></tr>",
            escape(&plugin.meta.name),
            escape(&plugin.meta.info.name),
            escape(&plugin.meta.info.version),
            escape(&runs),
            state.replace('_', " "),
            plugin.counts.calls,
            plugin.counts.errors,
            plugin.counts.skipped,
        );
    }
    page.push_str("</tbody></table>\n");
}

/// The declared events, with the service's counts of each (the same `/metrics` exports).
fn events(page: &mut String, generation: &Generation, counts: &BTreeMap<String, EventCounts>) {
    page.push_str(
        "<h2>Events</h2>\n<table><thead><tr><th>Event</th><th>Arguments</th>\
         <th>Callbacks, in dispatch order</th><th class=\"n\">Received</th>\
         <th class=\"n\">Forwarded</th><th class=\"n\">Refused</th></tr></thead><tbody>\n",
    );
    for event in generation.registry().events() {
        let args: Vec<String> = event
            .schema
            .names
            .iter()
            .zip(&event.schema.types)
            .map(|(name, ty)| format!("{}: {}", escape(name.as_str()), escape(&ty.to_string())))
            .collect();
        let callbacks: Vec<String> = event
            .callbacks
            .iter()
            .map(|id| {
                let callback = generation.callback(*id);
                format!(
                    "<code>{}.{}</code>",
                    escape(&callback.plugin_name),
                    escape(&callback.name)
                )
            })
            .collect();
        let callbacks = if callbacks.is_empty() {
            "<span class=\"none\">none</span>".to_owned()
        } else {
            callbacks.join(" &rarr; ")
        };
        let doc = if event.doc.is_empty() {
            String::new()
        } else {
            format!("<br><small>{}</small>", escape(&event.doc))
        };
        let count = counts.get(event.name.as_str()).copied().unwrap_or_default();
        let _ = writeln!(
            page,
            "<tr><td><code>{}</code>{doc}</td><td><code>{}</code></td><td>{callbacks}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&event.name),
            args.join(", "),
            count.received,
            count.forwarded,
            count.refused_total(),
        );
    }
    page.push_str("</tbody></table>\n");
}

/// What crossed to and from NATS, by event: one row per event and crossing, and nothing
/// for a host that has no `[nats]` traffic.
fn nats(page: &mut String, crossings: &[(String, Crossing, u64)]) {
    if crossings.is_empty() {
        return;
    }
    page.push_str(
        "<h2>NATS</h2>\n<p class=\"lead\">Messages by event and crossing: where repeats were recognized (<code>already_completed_in_cache</code>, <code>already_completed_in_ledger</code>), events waiting for the host that began them (<code>claimed_elsewhere</code>), events whose callbacks may have run more than once (<code>ran_again</code>), and ledger errors.</p>\n\
         <table><thead><tr><th>Event</th><th>Crossing</th><th class=\"n\">Messages</th></tr></thead><tbody>\n",
    );
    for (event, how, n) in crossings {
        let _ = writeln!(
            page,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td class=\"n\">{n}</td></tr>",
            escape(event),
            how.name()
        );
    }
    page.push_str("</tbody></table>\n");
}

fn recent(page: &mut String, failures: &[Failure]) {
    page.push_str("<h2>Recent failures</h2>\n");
    if failures.is_empty() {
        page.push_str("<p class=\"none\">None since the server started.</p>\n");
        return;
    }
    page.push_str(
        "<table><thead><tr><th>When (UTC)</th><th>Request</th><th>Event</th><th>Callback</th>\
         <th>Kind</th><th>Message</th></tr></thead><tbody>\n",
    );
    for failure in failures {
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td>\
             <td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            clock(failure.at),
            escape(&failure.id),
            escape(&failure.event),
            escape(&failure.callback),
            failure.kind,
            escape(&failure.message),
        );
    }
    page.push_str("</tbody></table>\n");
}

/// Text made safe to put in HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `12 s`, `5 min`, `3 h 20 min`, `2 d 4 h`.
fn since(uptime: Duration) -> String {
    let s = uptime.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// `850 ns`, `12.3 us`, `4.5 ms`.
fn duration(nanos: u64) -> String {
    match nanos {
        0..1_000 => format!("{nanos} ns"),
        1_000..1_000_000 => format!("{:.1} us", nanos as f64 / 1e3),
        _ => format!("{:.1} ms", nanos as f64 / 1e6),
    }
}

/// `14:03:27` (UTC) of a moment.
fn clock(at: SystemTime) -> String {
    let s = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_and_messages_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(since(Duration::from_secs(59)), "59 s");
        assert_eq!(since(Duration::from_secs(3 * 3600 + 20 * 60)), "3 h 20 min");
        assert_eq!(duration(850), "850 ns");
        assert_eq!(duration(12_345), "12.3 us");
        assert_eq!(duration(4_500_000), "4.5 ms");
    }
}
