//! Issue 6, rule 3: models on disk. Names, symlinks, FIFOs, corrupted files, stale temporary files, a
//! fit killed with SIGKILL a few hundred times, concurrent fits, and applies during fits.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use smbdensity::model::store::{self, ModelStore};
use smbdensity::model::{Model, ModelBody};
use smbdensity::spl::{ModelName, Namespace};
use support::{Spawn, execute, getinfo, run, training};

fn name(n: &str) -> ModelName {
    ModelName {
        name: n.to_string(),
        namespace: Namespace::App,
    }
}

fn model_path(dir: &Path, n: &str) -> PathBuf {
    dir.join(format!("__smbdensity_{n}.model"))
}

/// Fits `count by h` from `body` into `model` through the real binary.
fn fit(models: &Path, model: &str, body: &str) {
    let mut input = getinfo(
        &["smbdensity", "count", "by", "h", "dist=norm", "into", model],
        "",
    );
    input.extend(execute(true, body.as_bytes()));
    let r = run(&Spawn::command("fit", models), input);
    r.assert_sane(&format!("fit {model}"), 512);
    r.assert_ok(&format!("fit {model}"));
    for e in fs::read_dir(models).unwrap() {
        let p = e.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_file() {
            let bytes = fs::read(&p).unwrap();
            assert!(
                !support::contains(&bytes, support::SESSION_KEY.as_bytes()),
                "session key in {}",
                p.display()
            );
        }
    }
}

/// Runs an apply of `model` over a small chunk and returns the run.
fn apply(models: &Path, model: &str) -> support::Run {
    let mut input = getinfo(&[model], "");
    input.extend(execute(true, b"count,h\n100,00000\n"));
    let r = run(&Spawn::command("apply", models), input);
    r.assert_sane(&format!("apply {model}"), 512);
    r
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn model_names_are_validated_before_any_path_is_built() {
    let long = "a".repeat(201);
    let bad = [
        "../x",
        "..",
        ".",
        "a/b",
        "/etc/passwd",
        "a\\b",
        "a\0b",
        "",
        long.as_str(),
        "a.b",
        "a b",
        "-x",
        "1abc",
        "é",
        "app:../x",
        "user:a/b",
        "a:b:c",
        "app:",
    ];
    for n in bad {
        assert!(ModelName::parse(n).is_err(), "{n:?} accepted");
    }
    assert!(ModelName::parse("foo:bar").is_err(), "unknown namespace");
    // The store checks again, whatever the caller built.
    let outside = tempfile::tempdir().unwrap();
    let models = outside.path().join("lookups");
    let st = ModelStore::new(&models);
    for n in bad {
        assert!(
            st.path_for(&name(n)).is_err(),
            "store built a path for {n:?}"
        );
    }
    // Through the real binary: refused in getinfo, nothing created anywhere.
    for n in ["../x", "a/b", "/tmp/x", "x".repeat(300).as_str()] {
        let r = run(
            &Spawn::command("fit", &models),
            getinfo(&["smbdensity", "count", "into", n], ""),
        );
        r.assert_sane(n, 64);
        r.assert_error(n, "Invalid model name");
        let r = run(&Spawn::command("apply", &models), getinfo(&[n], ""));
        r.assert_sane(n, 64);
        r.assert_error(n, "Invalid model name");
    }
    assert_eq!(dir_names(outside.path()), Vec::<String>::new());
    // 200 characters is the longest name; it fits a file name with the prefix.
    let longest = "b".repeat(200);
    fit(&models, &longest, &training(1, 60, 1));
    assert!(model_path(&models, &longest).is_file());
    // Windows device names match MLTK's name rule and are accepted: the file is always prefixed
    // (`__smbdensity_CON.model`), which is no device name on any system.
    for n in ["CON", "NUL", "aux", "COM1", "LPT9", "PRN"] {
        fit(&models, n, &training(1, 60, 1));
        assert!(model_path(&models, n).is_file(), "{n}");
        assert_eq!(apply(&models, n).code, Some(0));
    }
    for f in dir_names(&models) {
        assert!(
            f.starts_with("__smbdensity_") && f.ends_with(".model"),
            "{f}"
        );
    }
}

#[test]
fn symlinks_are_never_followed() {
    let root = tempfile::tempdir().unwrap();
    let models = root.path().join("lookups");
    let elsewhere = root.path().join("elsewhere");
    fs::create_dir_all(&models).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    // A real model outside the directory, and a link to it inside.
    fit(&elsewhere, "real", &training(2, 60, 1));
    let target = model_path(&elsewhere, "real");
    let target_bytes = fs::read(&target).unwrap();
    let link = model_path(&models, "m");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // Reading: getinfo (header) and the library both refuse, naming the file.
    let r = apply(&models, "m");
    let e = r.assert_error(
        "apply through a symlink",
        "is a symbolic link; refusing to follow it",
    );
    assert!(e.contains(&link.display().to_string()), "{e}");
    let st = ModelStore::new(&models);
    let e = st.load(&name("m")).unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");
    // A dangling link and a link to a device are refused the same way.
    let dangling = model_path(&models, "d");
    std::os::unix::fs::symlink(root.path().join("nowhere"), &dangling).unwrap();
    apply(&models, "d").assert_error("dangling link", "symbolic link");
    std::os::unix::fs::symlink("/dev/zero", model_path(&models, "z")).unwrap();
    apply(&models, "z").assert_error("link to /dev/zero", "symbolic link");
    // Saving over the link replaces the link; the file it pointed to is untouched.
    fit(&models, "m", &training(3, 60, 2));
    assert!(
        !fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read(&target).unwrap(),
        target_bytes,
        "wrote through the link"
    );
    assert_eq!(apply(&models, "m").code, Some(0));
    // A symlinked temp-like file is never deleted by the stale-temp cleanup either (below).
}

#[test]
fn fifos_directories_and_huge_files_do_not_hang_or_allocate() {
    let models = tempfile::tempdir().unwrap();
    let m = models.path();
    // A FIFO at the model path would block a plain open() forever.
    let fifo = model_path(m, "fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let r = apply(m, "fifo");
    r.assert_error("FIFO", "is not a regular file");
    fs::create_dir(model_path(m, "dir")).unwrap();
    apply(m, "dir").assert_error("directory", "is not a regular file");
    // A 5 GiB sparse file with a valid preamble that claims it all: refused without reading it.
    let mut pre = smbdensity::fuzzing::wrap_model(b"", b"", store::FORMAT_VERSION);
    let huge = 5u64 << 30;
    pre[16..24].copy_from_slice(&(huge - 32).to_le_bytes());
    let f = fs::File::create(model_path(m, "huge")).unwrap();
    std::io::Write::write_all(&mut &f, &pre).unwrap();
    f.set_len(huge).unwrap();
    let r = apply(m, "huge");
    r.assert_sane("huge sparse model", 64);
    r.assert_error("huge sparse model", "more than any model");
    // Zeros: refused at the magic bytes.
    let f = fs::File::create(model_path(m, "zeros")).unwrap();
    f.set_len(huge).unwrap();
    let r = apply(m, "zeros");
    r.assert_sane("huge sparse zeros", 64);
    r.assert_error(
        "huge sparse zeros",
        "not an smbdensity model (bad magic bytes)",
    );
}

/// A small real model file.
fn sample_model_bytes() -> Vec<u8> {
    let d = tempfile::tempdir().unwrap();
    fit(d.path(), "s", &training(3, 60, 4));
    fs::read(model_path(d.path(), "s")).unwrap()
}

#[test]
fn every_truncation_and_every_byte_flip_is_refused() {
    let good = sample_model_bytes();
    assert!(store::decode(&good).is_ok());
    for n in 0..good.len() {
        let e = store::decode(&good[..n]).expect_err("a truncated model decoded");
        assert!(e.contains("truncated"), "cut at {n}: {e}");
    }
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut b = good.clone();
            b[i] ^= flip;
            assert!(
                store::decode(&b).is_err(),
                "flipping byte {i} by {flip:#x} went unnoticed"
            );
        }
    }
    let mut long = good.clone();
    long.push(0);
    assert!(
        store::decode(&long)
            .unwrap_err()
            .contains("unexpected bytes")
    );
}

#[test]
fn damaged_files_give_clear_errors_naming_the_file() {
    let models = tempfile::tempdir().unwrap();
    let m = models.path();
    let good = sample_model_bytes();
    let mut future = good.clone();
    future[8..12].copy_from_slice(&(smbdensity::model::store::FORMAT_VERSION + 1).to_le_bytes());
    let mut payload_flip = good.clone();
    let last = payload_flip.len() - 3;
    payload_flip[last] ^= 0x55;
    let mut header_flip = good.clone();
    header_flip[40] ^= 0x55;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "truncated (shorter than its preamble)"),
        (
            "short",
            good[..20].to_vec(),
            "truncated (shorter than its preamble)",
        ),
        ("cut", good[..good.len() - 10].to_vec(), "truncated"),
        ("cutheader", good[..40].to_vec(), "truncated"),
        (
            "tail",
            [good.clone(), b"junk".to_vec()].concat(),
            "unexpected bytes after the payload",
        ),
        ("future", future, "is not supported by this smbdensity"),
        ("payloadflip", payload_flip, "payload checksum mismatch"),
        ("headerflip", header_flip, "header checksum mismatch"),
        (
            "png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde".to_vec(),
            "bad magic bytes",
        ),
        (
            "text",
            b"count,h\n1,2\n3,4\n5,6\n7,8\n9,10\n11,12\n".to_vec(),
            "bad magic bytes",
        ),
        (
            "gzip",
            b"\x1f\x8b\x08\0\0\0\0\0\0\x03".repeat(4),
            "bad magic bytes",
        ),
    ];
    for (n, bytes, needle) in &cases {
        let path = model_path(m, n);
        fs::write(&path, bytes).unwrap();
        let r = apply(m, n);
        let e = r.assert_error(n, needle);
        assert!(
            e.contains(&format!("model file {} is unusable", path.display())),
            "{n}: {e}"
        );
        // The library says the same, and never panics.
        let e = ModelStore::new(m).load(&name(n)).unwrap_err().to_string();
        assert!(
            e.contains(needle) && e.contains(&path.display().to_string()),
            "{n}: {e}"
        );
    }
}

/// Sets the modification time of `path` itself (never a symlink's target) `age` into the past.
fn age(path: &Path, age: Duration) {
    let t = SystemTime::now() - age;
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let ts = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    ];
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(r, 0, "utimensat {}", path.display());
}

#[test]
fn stale_temporary_files_are_cleaned_up_safely() {
    let root = tempfile::tempdir().unwrap();
    let models = root.path().join("lookups");
    fs::create_dir_all(&models).unwrap();
    let old = Duration::from_secs(7 * 3600);
    let stale = models.join(".__smbdensity_tmp_stale.tmp");
    fs::write(&stale, b"half a model").unwrap();
    age(&stale, old);
    let fresh = models.join(".__smbdensity_tmp_fresh.tmp");
    fs::write(&fresh, b"a fit in progress").unwrap();
    let other = models.join("notes.txt");
    fs::write(&other, b"not ours").unwrap();
    age(&other, old);
    let precious = root.path().join("precious");
    fs::write(&precious, b"outside").unwrap();
    age(&precious, old);
    let link = models.join(".__smbdensity_tmp_link.tmp");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    age(&link, old);
    let dir = models.join(".__smbdensity_tmp_dir.tmp");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("inner"), b"x").unwrap();
    age(&dir, old);
    fit(&models, "m", &training(1, 60, 1));
    assert!(!stale.exists(), "a stale temporary file survived");
    assert!(
        fresh.exists(),
        "a fresh temporary file (a fit in progress?) was removed"
    );
    assert!(other.exists() && dir.join("inner").exists());
    assert!(fs::symlink_metadata(&link).is_ok(), "a symlink was removed");
    assert_eq!(fs::read(&precious).unwrap(), b"outside");
}

/// A session file for a fit of `count by h` into `model`, for stdin.
fn session_file(dir: &Path, file: &str, model: &str, body: &str, dispatch: &Path) -> PathBuf {
    let mut input = getinfo(
        &["smbdensity", "count", "by", "h", "dist=norm", "into", model],
        dispatch.to_str().unwrap(),
    );
    // Several chunks, as splunkd sends them.
    let lines: Vec<&str> = body.lines().collect();
    let (head, rows) = lines.split_first().unwrap();
    for (i, part) in rows.chunks(5000).enumerate() {
        let last = (i + 1) * 5000 >= rows.len();
        let chunk = format!("{head}\n{}\n", part.join("\n"));
        input.extend(execute(last, chunk.as_bytes()));
    }
    let p = dir.join(file);
    fs::write(&p, input).unwrap();
    p
}

fn spawn_fit(models: &Path, session: &Path) -> std::process::Child {
    Command::new(support::bin())
        .arg("fit")
        .env("SMBDENSITY_MODEL_DIR", models)
        .stdin(fs::File::open(session).unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The model a complete fit of `session` writes (its body, and its header without the timestamp).
fn reference(models: &Path, session: &Path, model: &str) -> Model {
    let st = spawn_fit(models, session).wait().unwrap();
    assert!(st.success());
    let mut m = ModelStore::new(models).load(&name(model)).unwrap();
    m.header.created = 0;
    m
}

fn is_one_of(bytes: &[u8], refs: &[&Model]) -> Option<usize> {
    let mut m = store::decode(bytes).ok()?;
    m.header.created = 0;
    refs.iter().position(|r| **r == m)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// SIGKILL a fit at random points, a few hundred times: the model on disk is always the previous one,
/// byte for byte, or (when the fit got as far as the rename) the whole new one.
#[test]
fn a_fit_killed_at_any_point_leaves_the_previous_model_intact() {
    let work = tempfile::tempdir().unwrap();
    let models = work.path().join("lookups");
    let dispatch = work.path().join("dispatch");
    fs::create_dir_all(&models).unwrap();
    fs::create_dir_all(&dispatch).unwrap();
    // Two different models of many groups, so that the save is a real part of the run.
    let a = session_file(work.path(), "a.in", "km", &training(400, 4, 11), &dispatch);
    let b = session_file(work.path(), "b.in", "km", &training(300, 5, 12), &dispatch);
    let ref_dir = work.path().join("refs");
    fs::create_dir_all(&ref_dir).unwrap();
    let t0 = Instant::now();
    let ref_a = reference(&ref_dir, &a, "km");
    let full = t0.elapsed();
    fs::remove_file(model_path(&ref_dir, "km")).unwrap();
    let ref_b = reference(&ref_dir, &b, "km");
    assert_ne!(ref_a, ref_b);
    // Start from model A on disk.
    assert!(spawn_fit(&models, &a).wait().unwrap().success());
    let path = model_path(&models, "km");
    let mut good;
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill test: seed {seed}, a full fit takes {full:?}");
    // When does the rename happen? Half of the kills aim around that moment.
    let save_at = {
        use std::os::unix::fs::MetadataExt;
        let ino = fs::metadata(&path).unwrap().ino();
        let t = Instant::now();
        let mut child = spawn_fit(&models, &b);
        let mut at = None;
        while at.is_none() && child.try_wait().unwrap().is_none() {
            if fs::metadata(&path).map(|m| m.ino() != ino).unwrap_or(false) {
                at = Some(t.elapsed());
            }
        }
        assert!(child.wait().unwrap().success());
        good = fs::read(&path).unwrap();
        at.unwrap_or(full)
    };
    eprintln!("kill test: the rename comes about {save_at:?} into a fit");
    let mut rng = Rng(seed);
    let kills: usize = std::env::var("SMBDENSITY_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let budget = Duration::from_secs(45);
    let start = Instant::now();
    let (mut killed, mut kept, mut replaced) = (0, 0, 0);
    let mut i = 0;
    while killed < kills {
        let (input, want) = if i % 2 == 0 { (&a, 0) } else { (&b, 1) };
        i += 1;
        // Random delays over the whole run, or within 20 ms around the rename.
        let r = rng.next();
        let delay = if r % 2 == 0 {
            Duration::from_micros(r / 2 % (full.as_micros() as u64 + 1))
        } else {
            (save_at + Duration::from_micros(r / 2 % 20_000))
                .saturating_sub(Duration::from_millis(15))
        };
        let mut child = spawn_fit(&models, input);
        std::thread::sleep(delay);
        let _ = child.kill();
        let st = child.wait().unwrap();
        if st.code().is_none() {
            killed += 1;
        }
        let now = fs::read(&path).expect("the model must always exist");
        if now == good {
            kept += 1;
        } else {
            let which = is_one_of(&now, &[&ref_a, &ref_b]);
            assert_eq!(
                which,
                Some(want),
                "run {i} (delay {delay:?}, {st:?}): the model is neither the previous one nor the new one"
            );
            replaced += 1;
            good = now;
        }
        // Loads through the store too (what apply does).
        ModelStore::new(&models).load(&name("km")).unwrap();
        assert!(
            start.elapsed() < budget || killed >= 50,
            "too slow: {killed} kills in {:?}",
            start.elapsed()
        );
        if start.elapsed() > budget {
            break;
        }
    }
    eprintln!(
        "kill test: {i} runs, {killed} killed, model kept {kept} times, replaced {replaced} times, {:?}",
        start.elapsed()
    );
    assert!(killed >= 50, "only {killed} kills");
    // Only temporary files can be left behind, and the spill files in the dispatch directory are
    // anonymous: nothing there.
    for f in dir_names(&models) {
        assert!(
            f == "__smbdensity_km.model" || f.starts_with(".__smbdensity_tmp_"),
            "left behind: {f}"
        );
    }
    assert_eq!(dir_names(&dispatch), Vec::<String>::new());
    // Once old, the leftovers go at the next save.
    for f in dir_names(&models) {
        if f.starts_with(".__smbdensity_tmp_") {
            age(&models.join(&f), Duration::from_secs(7 * 3600));
        }
    }
    assert!(spawn_fit(&models, &a).wait().unwrap().success());
    assert_eq!(dir_names(&models), ["__smbdensity_km.model"]);
}

#[test]
fn concurrent_fits_write_one_whole_model_and_applies_never_see_a_torn_one() {
    let work = tempfile::tempdir().unwrap();
    let models = work.path().join("lookups");
    let dispatch = work.path().join("dispatch");
    fs::create_dir_all(&models).unwrap();
    fs::create_dir_all(&dispatch).unwrap();
    let a = session_file(work.path(), "a.in", "cm", &training(2000, 5, 21), &dispatch);
    let b = session_file(work.path(), "b.in", "cm", &training(1500, 7, 22), &dispatch);
    let ref_dir = work.path().join("refs");
    fs::create_dir_all(&ref_dir).unwrap();
    let ref_a = reference(&ref_dir, &a, "cm");
    fs::remove_file(model_path(&ref_dir, "cm")).unwrap();
    let ref_b = reference(&ref_dir, &b, "cm");
    let path = model_path(&models, "cm");
    // Two fits at once, a dozen times.
    let mut seen = [0, 0];
    for _ in 0..12 {
        let mut x = spawn_fit(&models, &a);
        let mut y = spawn_fit(&models, &b);
        assert!(x.wait().unwrap().success() && y.wait().unwrap().success());
        let which = is_one_of(&fs::read(&path).unwrap(), &[&ref_a, &ref_b])
            .expect("two concurrent fits produced a mixture");
        seen[which] += 1;
    }
    eprintln!(
        "concurrent fits: A won {} times, B {} times",
        seen[0], seen[1]
    );
    // Applies and loads while fits replace the model over and over.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fitter = {
        let (models, a, b, stop) = (models.clone(), a.clone(), b.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 6 {
                let s = if n % 2 == 0 { &a } else { &b };
                assert!(spawn_fit(&models, s).wait().unwrap().success());
                n += 1;
            }
            n
        })
    };
    let st = ModelStore::new(&models);
    let start = Instant::now();
    let (mut loads, mut applies) = (0, 0);
    while start.elapsed() < Duration::from_secs(8) {
        let mut m = st.load(&name("cm")).expect("a load during a fit failed");
        m.header.created = 0;
        assert!(m == ref_a || m == ref_b, "a load saw a torn model");
        loads += 1;
        if loads % 10 == 0 {
            let r = apply(&models, "cm");
            let replies = r.assert_ok("apply during fits");
            let rows = replies.last().unwrap().byte_rows();
            assert_eq!(rows.len(), 2);
            applies += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let fits = fitter.join().unwrap();
    eprintln!("{loads} loads and {applies} applies during {fits} fits");
    assert!(fits >= 6 && loads >= 20 && applies >= 2);
    assert!(matches!(
        st.load(&name("cm")).unwrap().body,
        ModelBody::Density(_)
    ));
}

/// Found by the `model_decode` fuzzer: a model whose checksums are right but whose header declares a
/// 1.8 GB string made the decoder allocate that much before noticing the input was short. With the
/// address space capped at 256 MiB, the old decoder aborts; the fixed one reports the file.
#[test]
fn a_lying_string_length_inside_a_valid_file_does_not_allocate() {
    let input = fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/model_decode/regression-oom-string-length"
    ))
    .unwrap();
    let cut = (u16::from_le_bytes([input[0], input[1]]) as usize).min(input.len() - 2);
    let (h, p) = input[2..].split_at(cut);
    let file = smbdensity::fuzzing::wrap_model(h, p, store::FORMAT_VERSION);
    let models = tempfile::tempdir().unwrap();
    fs::write(model_path(models.path(), "liar"), &file).unwrap();
    let mut s = Spawn::command("apply", models.path());
    s.vm_limit_mib = 256;
    let mut input = getinfo(&["liar"], "");
    input.extend(execute(true, b"count,h\n100,00000\n"));
    let r = run(&s, input);
    r.assert_sane("lying string length", 64);
    r.assert_error("lying string length", "does not decode");
}
