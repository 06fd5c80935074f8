//! Server-rendered HTML: the fleet page (its `<main>` is also what the event stream sends),
//! the login form and the log view. Every value is HTML-escaped.

use std::fmt::Write as _;

use super::model::{DeviceRow, Fleet, NodeRow};

/// `s` safe in HTML text and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as one URL path segment.
pub fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn bytes(n: u64) -> String {
    const MI: f64 = 1024.0 * 1024.0;
    if n as f64 >= 1024.0 * MI {
        format!("{:.1} GiB", n as f64 / (1024.0 * MI))
    } else {
        format!("{:.0} MiB", n as f64 / MI)
    }
}

fn head(title: &str, csrf: &str) -> String {
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
<meta name=viewport content=\"width=device-width\"><meta name=csrf content=\"{}\">\
<title>{}</title><link rel=stylesheet href=\"/ui/assets/style.css\"></head><body>",
        esc(csrf),
        esc(title)
    )
}

fn header(csrf: &str) -> String {
    format!(
        "<header><b>barge fleet</b> <span id=live class=off>connecting</span>\
<form method=post action=\"/ui/logout\"><input type=hidden name=csrf value=\"{}\">\
<button>Log out</button></form></header>",
        esc(csrf)
    )
}

/// The whole page.
pub fn page(fleet: &Fleet, csrf: &str) -> String {
    let mut s = head("barge fleet", csrf);
    s.push_str(&header(csrf));
    s.push_str("<main id=fleet>");
    s.push_str(&main(fleet));
    s.push_str("</main>");
    s.push_str(
        "<form id=editor hidden><h3>Desired value of <span id=ed-what></span></h3>\
<input id=ed-value name=value autocomplete=off> <button type=submit id=ed-save>Save</button> \
<button type=button id=ed-cancel>Cancel</button><p id=ed-msg role=alert></p></form>",
    );
    s.push_str("<script src=\"/ui/assets/app.js\"></script></body></html>");
    s
}

/// The live part of the page (the event stream's payload).
pub fn main(fleet: &Fleet) -> String {
    let mut s = String::new();
    let online = fleet.nodes.iter().filter(|n| n.online).count();
    let _ = write!(
        s,
        "<section><h2>Nodes <small>{online}/{} online</small></h2><table id=nodes>\
<tr><th>Node<th>Status<th>Last seen<th>Labels<th>CPU<th>Memory<th>Pods</tr>",
        fleet.nodes.len()
    );
    for n in &fleet.nodes {
        node_row(&mut s, n);
    }
    s.push_str("</table></section><section><h2>Workloads</h2>");
    for n in &fleet.nodes {
        let _ = write!(
            s,
            "<h3>{}</h3><table class=pods data-node=\"{}\"><tr><th>Pod<th>Phase<th>Restarts<th>Ready<th></tr>",
            esc(&n.name),
            esc(&n.name)
        );
        if n.pods.is_empty() {
            s.push_str("<tr><td colspan=5 class=dim>no pods</tr>");
        }
        for p in &n.pods {
            let _ = write!(
                s,
                "<tr data-pod=\"{}/{}\"><td>{}/{}<td class=\"phase {}\">{}<td>{}<td>{}\
<td><a href=\"/ui/nodes/{}/pods/{}/{}/log\">log</a></tr>",
                esc(&p.namespace),
                esc(&p.name),
                esc(&p.namespace),
                esc(&p.name),
                esc(&p.phase.to_ascii_lowercase()),
                esc(&p.phase),
                p.restarts,
                esc(&p.ready),
                seg(&n.name),
                seg(&p.namespace),
                seg(&p.name)
            );
        }
        s.push_str("</table>");
    }
    s.push_str(
        "</section><section><h2>Devices</h2><table id=devices>\
<tr><th>Device<th>Node<th>Model<th>State<th>Property<th>Desired<th>Reported<th></tr>",
    );
    if fleet.devices.is_empty() {
        s.push_str("<tr><td colspan=8 class=dim>no devices</tr>");
    }
    for d in &fleet.devices {
        device_rows(&mut s, d);
    }
    s.push_str("</table></section>");
    s
}

fn node_row(s: &mut String, n: &NodeRow) {
    let labels: Vec<String> = n
        .labels
        .iter()
        .map(|(k, v)| format!("<code>{}={}</code>", esc(k), esc(v)))
        .collect();
    let cpu = if n.cpus > 0 {
        format!("{:.0}%", n.cpu_millis as f64 / (n.cpus as f64 * 10.0))
    } else {
        "-".into()
    };
    let mem = if n.memory_total > 0 {
        format!("{} / {}", bytes(n.memory_used), bytes(n.memory_total))
    } else {
        "-".into()
    };
    let (class, word) = if n.online {
        ("online", "Online")
    } else {
        ("offline", "Offline")
    };
    let _ = write!(
        s,
        "<tr data-node=\"{}\" class={class}><td>{}<td class=status title=\"{}\">{word}\
<td>{}<td>{}<td>{cpu}<td>{mem}<td class=npods>{}</tr>",
        esc(&n.name),
        esc(&n.name),
        esc(n.reason),
        esc(if n.last_seen.is_empty() {
            "never"
        } else {
            &n.last_seen
        }),
        labels.join(" "),
        n.pods.len()
    );
}

fn device_rows(s: &mut String, d: &DeviceRow) {
    let span = d.properties.len().max(1);
    let _ = write!(
        s,
        "<tr data-device=\"{}/{}\"><td rowspan={span}>{}/{}<td rowspan={span}>{}<td rowspan={span}>{}\
<td rowspan={span} class=\"dstate {}\">{}",
        esc(&d.namespace),
        esc(&d.name),
        esc(&d.namespace),
        esc(&d.name),
        esc(&d.node),
        esc(&d.model),
        esc(&d.state),
        esc(&d.state)
    );
    if d.properties.is_empty() {
        s.push_str("<td colspan=4 class=dim>no properties</tr>");
    }
    for (i, p) in d.properties.iter().enumerate() {
        if i > 0 {
            s.push_str("<tr>");
        }
        let desired = p.desired.as_deref().unwrap_or("");
        let differs = p.desired.is_some() && p.reported.is_some() && p.desired != p.reported;
        let _ = write!(
            s,
            "<td>{}<td class=desired data-prop=\"{}\">{}<td class=\"reported{}\">{}{}\
<td><button class=edit data-ns=\"{}\" data-name=\"{}\" data-prop=\"{}\" data-value=\"{}\">edit</button></tr>",
            esc(&p.name),
            esc(&p.name),
            esc(desired),
            if differs { " pending" } else { "" },
            esc(p.reported.as_deref().unwrap_or("–")),
            if p.conflict {
                " <span class=conflict title=\"desired values conflicted; see fleet get device\">⚠ conflict</span>"
            } else {
                ""
            },
            esc(&d.namespace),
            esc(&d.name),
            esc(&p.name),
            esc(desired)
        );
    }
}

/// The login form (with an error after a wrong token).
pub fn login(error: Option<&str>) -> String {
    let mut s = String::from(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>barge fleet: log in</title><style>",
    );
    s.push_str(super::STYLE);
    s.push_str("</style></head><body><form id=login method=post action=\"/ui/login\"><h2>barge fleet</h2>\
<label>Admin token (from admin.conf)<br><input type=password name=token id=token autofocus required></label> \
<button type=submit id=login-btn>Log in</button>");
    if let Some(e) = error {
        let _ = write!(s, "<p class=error id=login-error role=alert>{}</p>", esc(e));
    }
    s.push_str("</form></body></html>");
    s
}

/// The log view of one pod (the script follows the API's log stream).
pub fn log_page(node: &str, ns: &str, pod: &str, csrf: &str) -> String {
    let mut s = head(&format!("log of {ns}/{pod}"), csrf);
    s.push_str(&header(csrf));
    let _ = write!(
        s,
        "<main><p><a href=\"/\">← fleet</a></p><h2>{}/{} on {}</h2>\
<pre id=log data-src=\"/api/v1/nodes/{}/pods/{}/{}/log?follow=true&amp;tailLines=1000\"></pre>\
<p id=log-state class=dim>connecting…</p></main><script src=\"/ui/assets/app.js\"></script></body></html>",
        esc(ns),
        esc(pod),
        esc(node),
        seg(node),
        seg(ns),
        seg(pod)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::model::{PodRow, PropertyRow};

    #[test]
    fn escapes_and_marks() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
        let fleet = Fleet {
            nodes: vec![NodeRow {
                name: "e<1>".into(),
                online: false,
                reason: "NodeSilent",
                last_seen: String::new(),
                labels: vec![("zone".into(), "x".into())],
                cpu_millis: 500,
                cpus: 2,
                memory_used: 1 << 30,
                memory_total: 2 << 30,
                pods: vec![PodRow {
                    namespace: "default".into(),
                    name: "web".into(),
                    phase: "Running".into(),
                    restarts: 2,
                    ready: "1/1".into(),
                }],
            }],
            devices: vec![DeviceRow {
                namespace: "default".into(),
                name: "thermo".into(),
                node: "e1".into(),
                model: "m".into(),
                state: "online".into(),
                properties: vec![PropertyRow {
                    name: "target".into(),
                    desired: Some("21".into()),
                    reported: Some("20".into()),
                    conflict: true,
                }],
            }],
        };
        let m = main(&fleet);
        assert!(m.contains("data-node=\"e&lt;1&gt;\" class=offline"));
        assert!(m.contains(">Offline<"));
        assert!(m.contains("25%"));
        assert!(m.contains("/ui/nodes/e%3C1%3E/pods/default/web/log"));
        assert!(m.contains("conflict"));
        assert!(m.contains("class=\"reported pending\""));
        assert!(!m.contains("<1>"));
    }
}
