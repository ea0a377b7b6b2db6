//! Terminal hygiene for `krill top`: raw mode and the alternate screen while it runs,
//! and the terminal given back as it was on every way out: `q`, an error (the guard's
//! drop), a panic (ratatui's hook restores before the message prints), and SIGTERM,
//! SIGHUP (the SSH session ended) or SIGINT (the loop ends on each).

use std::io::Write;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute};
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

use super::model::Key;

/// Raw mode and the alternate screen, until dropped.
pub struct Screen {
    pub terminal: DefaultTerminal,
}

impl Screen {
    /// Enters raw mode and the alternate screen; installs the panic hook that leaves
    /// them.
    pub fn enter() -> std::io::Result<Screen> {
        Ok(Screen {
            terminal: ratatui::try_init()?,
        })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        ratatui::restore();
        let mut out = std::io::stdout();
        let _ = execute!(out, cursor::Show);
        let _ = out.flush();
    }
}

/// What the terminal sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Key(Key),
    /// The terminal changed size: draw again.
    Resize,
    /// Ctrl-C (raw mode turns it into a key).
    Interrupt,
}

fn input(e: Event) -> Option<Input> {
    match e {
        Event::Key(k) if k.kind == KeyEventKind::Press => {
            if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
                return Some(Input::Interrupt);
            }
            let key = match k.code {
                KeyCode::Up => Key::Up,
                KeyCode::Down => Key::Down,
                KeyCode::Enter => Key::Enter,
                KeyCode::Esc | KeyCode::Backspace => Key::Esc,
                KeyCode::Char(c) => Key::Char(c),
                _ => return None,
            };
            Some(Input::Key(key))
        }
        Event::Resize(..) => Some(Input::Resize),
        _ => None,
    }
}

/// Reads the terminal on a thread of its own (crossterm's reads block) and sends
/// what matters. The thread ends when the receiver is gone, or the process does.
pub fn inputs() -> mpsc::UnboundedReceiver<Input> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(e) = event::read() {
            if let Some(i) = input(e) {
                if tx.send(i).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Resolves when SIGTERM, SIGHUP or SIGINT arrives.
pub async fn exit_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = hup.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEvent;

    #[test]
    fn keys_and_ctrl_c() {
        let k = |c, m| input(Event::Key(KeyEvent::new(c, m)));
        assert_eq!(
            k(KeyCode::Char('S'), KeyModifiers::SHIFT),
            Some(Input::Key(Key::Char('S')))
        );
        assert_eq!(
            k(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Input::Interrupt)
        );
        assert_eq!(
            k(KeyCode::Up, KeyModifiers::NONE),
            Some(Input::Key(Key::Up))
        );
        assert_eq!(k(KeyCode::F(1), KeyModifiers::NONE), None);
        assert_eq!(input(Event::Resize(80, 24)), Some(Input::Resize));
    }
}
