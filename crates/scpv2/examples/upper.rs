//! `| upper field=<name>`: a complete SCPv2 search command, and splunkd's side of a conversation with it.
//!
//! `cargo run -p scpv2 --example upper` runs the command on a small CSV through the driver, as splunkd
//! would; splunkd itself starts it as `upper upper` (commands.conf: `chunked = true`,
//! `filename = upper`, `command.arg.1 = upper`).

use std::io;

use scpv2::body::{BodyReader, body_writer};
use scpv2::metadata::Reply;
use scpv2::{Command, GetInfo, Output, ReplyBody, Server};

struct Upper {
    field: String,
}

impl Command for Upper {
    type Error = String;

    fn getinfo(&mut self) -> Reply {
        Reply {
            kind: Some("streaming"),
            required_fields: Some(vec![self.field.clone()]),
            ..Default::default()
        }
    }

    fn execute(
        &mut self,
        body: &[u8],
        _finished: bool,
        chunk: u64,
        out: &mut Output,
    ) -> Result<(), String> {
        let mut rows = BodyReader::new(body).map_err(|e| format!("chunk {chunk}: {e}"))?;
        let Some(col) = rows.header.find(&self.field) else {
            if !rows.header.is_empty() {
                out.warn(format!("field \"{}\" is not in the events", self.field));
            }
            out.body = ReplyBody::Bytes(body.to_vec());
            return Ok(());
        };
        let mut w = body_writer(Vec::new());
        w.write_record(&rows.header.names)
            .map_err(|e| e.to_string())?;
        let mut rec = csv::ByteRecord::new();
        while rows.read(&mut rec).map_err(|e| e.to_string())? {
            let cells = rec.iter().enumerate().map(|(i, v)| {
                if i == col {
                    v.to_ascii_uppercase()
                } else {
                    v.to_vec()
                }
            });
            w.write_record(cells).map_err(|e| e.to_string())?;
        }
        out.body = ReplyBody::Bytes(w.into_inner().map_err(|e| e.to_string())?);
        Ok(())
    }
}

fn build(info: &GetInfo) -> Result<Upper, String> {
    match info.searchinfo.args.as_slice() {
        [a] if a.starts_with("field=") => Ok(Upper {
            field: a["field=".len()..].to_string(),
        }),
        other => Err(format!("usage: upper field=<name> (got {other:?})")),
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("upper") {
        let (stdin, stdout) = (io::stdin(), io::stdout());
        std::process::exit(Server::new("upper").serve(stdin.lock(), stdout.lock(), build));
    }
    // No command name: play splunkd and run `| upper field=user` over three events.
    let exe = std::env::current_exe().expect("own path");
    let input = "user,action\nana,login\nbo,logout\n\"c,d\",login\n";
    let mut output = Vec::new();
    let outcome = scpv2::driver::run(
        "upper",
        &["field=user".to_string()],
        input.as_bytes(),
        &mut output,
        &scpv2::driver::Options::new(exe),
    )
    .expect("the conversation");
    print!("{}", String::from_utf8_lossy(&output));
    eprintln!(
        "exit status {:?}, {} rows",
        outcome.exit_code, outcome.rows_out
    );
}
