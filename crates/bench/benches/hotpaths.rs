//! Micro-benchmarks of the hot paths (`cargo bench`): CSV decode and encode of shaped rows, group
//! lookup, number parsing and formatting. A plain timing loop (best of several runs), so it builds
//! without extra dependencies; `smbdensity bench` measures the whole pipe.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use smbdensity::bench::Shape;
use smbdensity::commands::rows;
use smbdensity::commands::score::parse_number;
use smbdensity::density::pyfmt;
use smbdensity::model::encode_key;
use smbdensity::protocol::body::{BodyReader, body_writer};

/// Runs `f` (which handles `items` items) several times and prints the best rate.
fn time(name: &str, items: usize, mut f: impl FnMut()) {
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!(
        "{name:<48} {:>9.1} M items/s  ({:.2} ms per {items})",
        items as f64 / best / 1e6,
        best * 1e3
    );
}

fn main() {
    let n = 50_000;
    let body = Shape {
        hosts: 300,
        projected: false,
    }
    .body(0, n);
    println!("chunk: {n} shaped rows, {} bytes\n", body.len());

    time("csv decode (BodyReader, ByteRecord)", n, || {
        let mut r = BodyReader::new(&body).unwrap();
        let mut rec = csv::ByteRecord::new();
        while r.read(&mut rec).unwrap() {
            black_box(&rec);
        }
    });

    let records: Vec<csv::ByteRecord> = {
        let mut r = BodyReader::new(&body).unwrap();
        let mut rec = csv::ByteRecord::new();
        let mut v = Vec::new();
        while r.read(&mut rec).unwrap() {
            v.push(rec.clone());
        }
        v
    };
    let cells: &[u8] = b",0.0,\"-Infinity:-3.1:0.005\n12.7:Infinity:0.005\",$-Infinity:-3.1:0.005$;$12.7:Infinity:0.005$";
    time("csv encode + 3 cells (csv::Writer)", n, || {
        let mut w = body_writer(Vec::with_capacity(body.len() * 2));
        let mut out = csv::ByteRecord::new();
        for rec in &records {
            out.clear();
            for f in rec {
                out.push_field(f);
            }
            out.push_field(b"0.0");
            out.push_field(b"-Infinity:-3.1:0.005\n12.7:Infinity:0.005");
            out.push_field(b"$-Infinity:-3.1:0.005$;$12.7:Infinity:0.005$");
            w.write_byte_record(&out).unwrap();
        }
        black_box(w.into_inner().unwrap());
    });
    time("encode + 3 cells (rows: raw copy, precomputed)", n, || {
        let mut r = BodyReader::new(&body).unwrap();
        let bytes = r.bytes();
        let mut rec = csv::ByteRecord::new();
        let mut out = Vec::with_capacity(body.len() * 2);
        while r.read(&mut rec).unwrap() {
            rows::write_input(&mut out, bytes, &rec, None);
            out.extend_from_slice(cells);
            out.push(b'\n');
        }
        black_box(out);
    });

    // Group lookup on encoded by-field keys, 168 and 1.68M groups.
    for hosts in [1usize, 10_000] {
        let keys: Vec<Vec<u8>> = (0..hosts * 168)
            .map(|i| {
                let (h, hw) = (i / 168, i % 168);
                let mut k = Vec::new();
                let src = format!("wks-{h:05}");
                let hour = format!("{:02}", hw % 24);
                encode_key([src.as_bytes(), hour.as_bytes(), b"Wednesday"], &mut k);
                k
            })
            .collect();
        let probes: Vec<&[u8]> = (0..1_000_000)
            .map(|i| keys[(i * 7919) % keys.len()].as_slice())
            .collect();
        let std_map: HashMap<Vec<u8>, u32> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u32))
            .collect();
        let fold_map: HashMap<Vec<u8>, u32, foldhash::fast::RandomState> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u32))
            .collect();
        time(
            &format!("group lookup, {} groups, std SipHash", keys.len()),
            probes.len(),
            || {
                let mut s = 0u64;
                for p in &probes {
                    s += u64::from(*std_map.get(*p).unwrap());
                }
                black_box(s);
            },
        );
        time(
            &format!("group lookup, {} groups, foldhash", keys.len()),
            probes.len(),
            || {
                let mut s = 0u64;
                for p in &probes {
                    s += u64::from(*fold_map.get(*p).unwrap());
                }
                black_box(s);
            },
        );
    }

    let counts: Vec<String> = (0..1_000_000u64)
        .map(|i| (i * 37 % 5000).to_string())
        .collect();
    time("parse_number (integer counts)", counts.len(), || {
        let mut s = 0.0;
        for c in &counts {
            s += parse_number(c.as_bytes()).unwrap();
        }
        black_box(s);
    });
    time("str::parse::<f64> (integer counts)", counts.len(), || {
        let mut s = 0.0;
        for c in &counts {
            s += c.parse::<f64>().unwrap();
        }
        black_box(s);
    });
    let xs: Vec<f64> = (0..200_000)
        .map(|i| (i as f64) * 0.7301 - 1234.5678)
        .collect();
    time("pyfmt::repr (Python float repr)", xs.len(), || {
        let mut n = 0;
        for x in &xs {
            n += pyfmt::repr(*x).len();
        }
        black_box(n);
    });
}
