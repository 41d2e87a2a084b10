//! This isolate's state (one [`IsolateState`] per Worker instance: its caches and its event
//! sink) and the one place where events reach the log.

use crate::app::IsolateState;
use crate::events::Event;
use std::rc::Rc;

thread_local! {
    pub(super) static ISOLATE: Rc<IsolateState> = Rc::new(IsolateState::default());
}

/// Writes events as log lines, one JSON line each: the one place where the isolate's event sink
/// ([`IsolateState::emit`]) reaches the log. Warnings and error causes go to the warning level.
pub(crate) fn write_events(events: &[Event]) {
    for event in events {
        match event {
            Event::Warning { .. } | Event::ErrorCause { .. } => {
                worker::console_warn!("{}", event.line());
            }
            _ => worker::console_log!("{}", event.line()),
        }
    }
}

/// A warning written right away (work after the response, the runtime's own failures).
pub(crate) fn warn(message: String) {
    write_events(&[Event::Warning { message }]);
}
