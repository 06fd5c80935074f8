//! Pull/load/push progress: one bar per layer on a terminal (indicatif), plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use barge_image::progress::{Event, LayerState, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Renderer {
    bars: Option<MultiProgress>,
    state: Mutex<HashMap<String, (ProgressBar, &'static str)>>,
    quiet: bool,
}

pub fn for_terminal(quiet: bool) -> Arc<Renderer> {
    let tty = std::io::stderr().is_terminal() && !quiet;
    Arc::new(Renderer {
        bars: tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        state: Mutex::new(HashMap::new()),
        quiet,
    })
}

fn label(state: &LayerState) -> &'static str {
    match state {
        LayerState::Exists => "Already exists",
        LayerState::Waiting => "Waiting",
        LayerState::Downloading { .. } => "Downloading",
        LayerState::Resuming { .. } => "Resuming",
        LayerState::Retrying { .. } => "Retrying",
        LayerState::Extracting => "Verifying and extracting",
        LayerState::Complete => "Pull complete",
        LayerState::Preparing => "Preparing",
        LayerState::Pushing { .. } => "Pushing",
        LayerState::RemoteExists => "Layer already exists",
        LayerState::Mounted { .. } => "Mounted",
        LayerState::Pushed => "Pushed",
    }
}

impl Renderer {
    pub fn finish(&self) {
        if let Ok(state) = self.state.lock() {
            for (bar, _) in state.values() {
                if !bar.is_finished() {
                    bar.finish();
                }
            }
        }
    }
}

impl Progress for Renderer {
    fn event(&self, event: Event) {
        if self.quiet {
            return;
        }
        let Event::Layer { digest, state } = event else {
            let line = match event {
                Event::Resolved { reference, .. } => Some(format!("Pulling {reference}")),
                Event::PushStarted { repository } => {
                    Some(format!("The push refers to repository [{repository}]"))
                }
                _ => None,
            };
            if let Some(line) = line {
                match &self.bars {
                    Some(m) => {
                        let _ = m.println(line);
                    }
                    None => eprintln!("{line}"),
                }
            }
            return;
        };
        let short = digest.short().to_string();
        let Ok(mut map) = self.state.lock() else {
            return;
        };
        let entry = map.entry(short.clone()).or_insert_with(|| {
            let bar = match &self.bars {
                Some(m) => m.add(ProgressBar::new(0)),
                None => ProgressBar::hidden(),
            };
            bar.set_style(
                ProgressStyle::with_template("{prefix}: {msg:<24} {bar:30} {bytes}/{total_bytes}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(short.clone());
            (bar, "")
        });
        let text = label(&state);
        let (bar, last) = entry;
        match &state {
            LayerState::Downloading { done, total } | LayerState::Pushing { done, total } => {
                bar.set_length(*total);
                bar.set_position(*done);
            }
            LayerState::Resuming { from } => bar.set_position(*from),
            LayerState::Complete
            | LayerState::Exists
            | LayerState::Pushed
            | LayerState::RemoteExists => bar.finish_with_message(text),
            LayerState::Mounted { from } => bar.finish_with_message(format!("Mounted from {from}")),
            _ => {}
        }
        if !bar.is_finished() {
            bar.set_message(text);
        }
        // Without a terminal: one line per change of state (not per chunk).
        if self.bars.is_none() && *last != text {
            match &state {
                LayerState::Resuming { from } => eprintln!("{short}: Resuming at byte {from}"),
                LayerState::Retrying { attempt, error } => {
                    eprintln!("{short}: Retrying (attempt {attempt}): {error}")
                }
                LayerState::Downloading { total, .. } => {
                    eprintln!("{short}: Downloading ({total} bytes)")
                }
                LayerState::Pushing { total, .. } => {
                    eprintln!("{short}: Pushing ({total} bytes)")
                }
                LayerState::Mounted { from } => eprintln!("{short}: Mounted from {from}"),
                _ => eprintln!("{short}: {text}"),
            }
        }
        *last = text;
    }
}
