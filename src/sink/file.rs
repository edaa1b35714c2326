//! The JSON Lines sink of `replay`: one record per line, dead letters either in the main
//! output or in their own file.

use std::io::{self, Write};

use super::Destination;
use crate::engine::Engine;
use crate::output::Record;

/// Where records go: the main output, and dead letters either there or to their own file.
pub struct FileSink<'a> {
    /// The main output.
    pub output: &'a mut (dyn Write + Send),
    /// Dead letters, if they have their own file.
    pub deadletter: Option<&'a mut (dyn Write + Send)>,
}

impl FileSink<'_> {
    /// Writes everything the engine has produced so far.
    pub fn drain(&mut self, engine: &mut Engine) -> io::Result<()> {
        self.write_records(engine.drain())
    }

    /// Writes `records`, in order.
    pub fn write_records(&mut self, records: impl IntoIterator<Item = Record>) -> io::Result<()> {
        // One line buffer for all: no allocation and growth per record.
        let mut line = Vec::with_capacity(512);
        for r in records {
            line.clear();
            r.write_line(&mut line);
            line.push(b'\n');
            let w: &mut dyn Write = match (&mut self.deadletter, Destination::of(&r)) {
                (Some(d), Destination::DeadLetter) => &mut **d,
                _ => &mut *self.output,
            };
            w.write_all(&line)?;
        }
        Ok(())
    }

    /// Flushes both outputs.
    pub fn flush(&mut self) -> io::Result<()> {
        self.output.flush()?;
        if let Some(d) = self.deadletter.as_mut() {
            d.flush()?;
        }
        Ok(())
    }
}
