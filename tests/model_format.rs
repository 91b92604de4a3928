//! Model file format version 3: round trips, version-1 and version-2 files still read with the output
//! they gave, and damaged or hostile version-3 files refused with a clear error, never a panic or hang.

mod support;

use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use smbdensity::model::ModelBody;
use smbdensity::model::store::{self, ModelStore};
use smbdensity::spl::{ModelName, Namespace};
use support::{Spawn, execute, getinfo, run};

fn name(n: &str) -> ModelName {
    ModelName {
        name: n.to_string(),
        namespace: Namespace::App,
    }
}

fn model_path(dir: &Path, n: &str) -> PathBuf {
    dir.join(format!("__smbdensity_{n}.model"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/models")
}

/// Runs a search command through the local driver over CSV `input`, keeping multivalue columns.
fn run_csv(line: &str, models: &Path, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(support::bin())
        .args(["run", line, "--keep-mv", "--models"])
        .arg(models)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn version(file: &[u8]) -> u32 {
    u32::from_le_bytes(file[8..12].try_into().unwrap())
}

/// Files written by the previous format (version 2) give the output they gave then (recorded with
/// that build), and so do the same models saved again as version 3 and as version 1.
#[test]
fn version_2_files_apply_as_they_did() {
    let apply_rows = fs::read(fixtures().join("apply.csv")).unwrap();
    for m in ["v2_norm", "v2_expon", "v2_bounds", "v2_kde", "v2_auto"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let old = fs::read(model_path(&fixtures(), m)).unwrap();
        assert_eq!(version(&old), 2, "{m}");
        fs::write(model_path(d, m), &old).unwrap();
        let expected = fs::read(fixtures().join(format!("{m}.expected.csv"))).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&run_csv(&format!("apply {m}"), d, &apply_rows)),
            String::from_utf8_lossy(&expected),
            "{m}"
        );
        let store = ModelStore::new(d);
        let model = store.load(&name(m)).unwrap();
        let v3 = format!("{m}_v3");
        store.save(&name(&v3), &model, u64::MAX).unwrap();
        assert_eq!(version(&fs::read(model_path(d, &v3)).unwrap()), 3);
        let v1 = format!("{m}_v1");
        fs::write(
            model_path(d, &v1),
            store::encode_version(&model, 1).unwrap(),
        )
        .unwrap();
        for again in [v3, v1] {
            assert_eq!(
                run_csv(&format!("apply {again}"), d, &apply_rows),
                expected,
                "{again}"
            );
        }
    }
}

/// Training rows `count,h` over `groups` groups, every 97th group with a key long enough to be kept
/// outside its record.
fn many_groups(groups: usize) -> String {
    let mut s = String::from("count,h\n");
    for i in 0..groups * 3 {
        let g = i % groups;
        let h = if g % 97 == 5 {
            format!("host-{g}-{}", "x".repeat(200))
        } else {
            format!("host-{g}")
        };
        s.push_str(&format!("{},{h}\n", 10 + (i * 7919) % 23));
    }
    s
}

/// A model decodes, re-encodes byte for byte, and reads for apply finding every group, in each
/// version; fit writes version 3 in the canonical form.
#[test]
fn every_version_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = many_groups(3000);
    run_csv(
        "fit smbdensity count by h dist=norm into many",
        d,
        train.as_bytes(),
    );
    run_csv(
        "fit smbdensity count by h dist=gaussian_kde into kde",
        d,
        many_groups(40).as_bytes(),
    );
    // A per-entity model (layout 1: the whole body in one section).
    let sample = Command::new(support::bin())
        .args(["sample", "--hosts", "12", "--days", "8"])
        .output()
        .unwrap();
    assert!(sample.status.success());
    run_csv(
        r#"fit smbdensity count by "HourOfDay,DayOfWeek" entity=src dist=negbin into hm"#,
        d,
        &sample.stdout,
    );
    for m in ["many", "kde", "hm"] {
        let file = fs::read(model_path(d, m)).unwrap();
        assert_eq!(version(&file), 3, "{m}");
        let model = store::decode(&file).unwrap();
        assert_eq!(
            store::encode_model(&model),
            file,
            "{m}: fit writes what encode writes"
        );
        for v in 1..=3 {
            let bytes = store::encode_version(&model, v).unwrap();
            let again = store::decode(&bytes).unwrap_or_else(|e| panic!("{m} v{v}: {e}"));
            assert_eq!(store::encode_model(&again), file, "{m} v{v}");
            let ModelBody::Density(body) = &model.body else {
                assert!(
                    store::decode_flat(bytes).is_err(),
                    "{m}: not for apply's reader"
                );
                continue;
            };
            let (header, flat) = store::decode_flat(bytes).unwrap();
            assert_eq!(header, model.header);
            assert_eq!(flat.len(), body.groups.len());
            for (g, group) in body.groups.iter().enumerate() {
                let found = flat.find(&group.key).expect("every group is found");
                assert_eq!(found.group(), g, "{m} v{v}");
                assert_eq!(&*flat.dist(found), &group.dist, "{m} v{v}");
            }
            assert!(flat.find(b"\x04\0\0\0none").is_none());
        }
    }
    // Apply gives the same bytes from each version of the many-groups model.
    let rows: String = many_groups(3000)
        .lines()
        .take(4000)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let model = ModelStore::new(d).load(&name("many")).unwrap();
    let v3 = run_csv("apply many", d, rows.as_bytes());
    for v in [1, 2] {
        let n = format!("many_v{v}");
        fs::write(model_path(d, &n), store::encode_version(&model, v).unwrap()).unwrap();
        assert_eq!(
            run_csv(&format!("apply {n}"), d, rows.as_bytes()),
            v3,
            "v{v}"
        );
    }
}

/// Where a version-3 file's parts lie (see the layout in `src/model/store.rs`).
struct Layout {
    payload: usize,
    /// Per-group data, records, index, other groups: absolute ranges in the file.
    sections: [Range<usize>; 4],
    groups: u64,
    stride: u64,
    slots: u64,
}

const SECTIONS_AT: usize = 49;
const TABLE_LEN: usize = SECTIONS_AT + 4 * 12;

fn payload_at(file: &[u8]) -> usize {
    32 + u32::from_le_bytes(file[12..16].try_into().unwrap()) as usize
}

fn layout(file: &[u8]) -> Layout {
    let u64_at = |i: usize| u64::from_le_bytes(file[i..i + 8].try_into().unwrap());
    let payload = payload_at(file);
    assert_eq!(file[payload], 0, "layout 0: a group table");
    let mut at = payload + TABLE_LEN;
    let sections = std::array::from_fn(|i| {
        let len = u64_at(payload + SECTIONS_AT + i * 12) as usize;
        at += len;
        at - len..at
    });
    assert_eq!(at, file.len());
    Layout {
        payload,
        sections,
        groups: u64_at(payload + 1),
        stride: u64_at(payload + 25),
        slots: u64_at(payload + 33),
    }
}

/// Makes every checksum of a version-3 file right again after an edit.
fn reseal(file: &mut [u8]) {
    let at = payload_at(file);
    store::reseal_v3(&mut file[at..]);
    let crc = store::payload_checksum(3, &file[at..]);
    file[28..32].copy_from_slice(&crc.to_le_bytes());
}

/// Applies `model` to a few rows, one of an unknown group, through the real binary.
fn apply(models: &Path, model: &str) -> support::Run {
    let mut input = getinfo(&[model], "");
    input.extend(execute(
        true,
        b"count,h\n100,host-1\n5,host-2\n7,nobody\n300,host-3\n",
    ));
    let r = run(&Spawn::command("apply", models), input);
    r.assert_sane(&format!("apply {model}"), 512);
    r
}

#[test]
fn damaged_version_3_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_csv(
        "fit smbdensity count by h dist=norm into good",
        d,
        many_groups(40).as_bytes(),
    );
    let good = fs::read(model_path(d, "good")).unwrap();
    let l = layout(&good);
    assert_eq!((l.groups, l.slots), (40, 54));
    let (good_header, good_flat) = store::decode_flat(good.clone()).unwrap();
    let keys: Vec<Vec<u8>> = (0..40).map(|g| good_flat.key(g).to_vec()).collect();
    // Every truncation and every changed byte: refused by the full decoder. Apply's reader refuses
    // them too, except in the per-group data, which it never reads: there the groups it gives are
    // the good ones.
    for n in 0..good.len() {
        assert!(store::decode(&good[..n]).is_err(), "cut at {n}");
        assert!(
            store::decode_flat(good[..n].to_vec()).is_err(),
            "cut at {n}"
        );
    }
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = good.clone();
            b[i] ^= flip;
            assert!(store::decode(&b).is_err(), "byte {i} ^ {flip:#x}");
            match store::decode_flat(b) {
                Err(e) => assert!(!e.is_empty()),
                Ok((h, flat)) => {
                    assert!(
                        l.sections[0].contains(&i),
                        "byte {i} ^ {flip:#x} went unnoticed"
                    );
                    assert_eq!(h, good_header);
                    assert_eq!(flat, good_flat);
                }
            }
        }
    }
    // The same through the binary: clear errors naming the file.
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let flipped = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x10;
        b
    };
    cases.push((
        "records",
        flipped(l.sections[1].start + 3),
        "payload checksum mismatch in the group records",
    ));
    cases.push((
        "index",
        flipped(l.sections[2].end - 20),
        "payload checksum mismatch in the group index",
    ));
    cases.push((
        "table",
        flipped(l.payload + 30),
        "payload checksum mismatch",
    ));
    cases.push(("cut", good[..good.len() - 7].to_vec(), "truncated"));
    // Hostile files, every checksum right.
    let resealed = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        edit(&mut b);
        reseal(&mut b);
        b
    };
    let slot = |b: &[u8], i: usize| {
        let at = l.sections[2].start + i * 8;
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    };
    let set_slot = |b: &mut Vec<u8>, i: usize, v: u64| {
        let at = l.sections[2].start + i * 8;
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    };
    let first_used = (0..l.slots as usize)
        .find(|&i| slot(&good, i) != 0)
        .unwrap();
    cases.push((
        "past",
        resealed(&|b| set_slot(b, first_used, slot(b, first_used) & !0xffff_ffff | 41)),
        "the group index names a group that does not exist",
    ));
    cases.push((
        "keylen",
        resealed(&|b| {
            let at = l.sections[1].start + 20;
            b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }),
        "a group key runs past its section",
    ));
    cases.push((
        "kind",
        resealed(&|b| b[l.sections[1].start + l.stride as usize + 16] = 7),
        "a group record of an unknown kind",
    ));
    cases.push((
        "stride",
        resealed(&|b| {
            let at = l.payload + 25;
            b[at..at + 8].copy_from_slice(&(l.stride + 8).to_le_bytes());
        }),
        "group table sizes disagree",
    ));
    cases.push((
        "sections",
        resealed(&|b| {
            let at = l.payload + SECTIONS_AT + 12;
            b[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        }),
        "its sections run past its end",
    ));
    cases.push((
        "probe",
        resealed(&|b| {
            let at = l.payload + 41;
            b[at..at + 8].copy_from_slice(&l.slots.to_le_bytes());
        }),
        "group table sizes disagree",
    ));
    for (n, bytes, needle) in &cases {
        let path = model_path(d, n);
        fs::write(&path, bytes).unwrap();
        let e = apply(d, n).assert_error(n, needle);
        assert!(
            e.contains(&format!("model file {} is unusable", path.display())),
            "{n}: {e}"
        );
        assert!(store::decode(bytes).is_err(), "{n}");
    }
    // Index slots moved to the wrong places, every checksum right: the full decoder refuses the
    // index; apply cannot tell (it checks bounds, not placement) and answers without a panic or hang.
    let moved = resealed(&|b| {
        let used: Vec<usize> = (0..l.slots as usize).filter(|&i| slot(b, i) != 0).collect();
        let (a, z) = (slot(b, used[0]), slot(b, used[used.len() - 1]));
        set_slot(b, used[0], z);
        set_slot(b, used[used.len() - 1], a);
    });
    assert!(
        store::decode(&moved)
            .unwrap_err()
            .contains("the group table is not the one its groups give")
    );
    fs::write(model_path(d, "moved"), &moved).unwrap();
    apply(d, "moved").assert_ok("moved slots");
    // An index with no empty slot and the longest probe the whole table: a lookup of an unknown
    // group still ends.
    let full = resealed(&|b| {
        let used = slot(b, first_used);
        for i in 0..l.slots as usize {
            if slot(b, i) == 0 {
                set_slot(b, i, used);
            }
        }
        let at = l.payload + 41;
        b[at..at + 8].copy_from_slice(&(l.slots - 1).to_le_bytes());
    });
    fs::write(model_path(d, "full"), &full).unwrap();
    let r = apply(d, "full");
    r.assert_ok("full index");
    let (_, flat) = store::decode_flat(full).unwrap();
    for k in &keys {
        assert!(flat.find(k).is_some());
    }
    assert!(flat.find(b"unknown").is_none());
}
