//! Python-compatible float text: `repr(float)`, `round(v, 4)` and `str(int)`.
//!
//! MLTK prints boundaries with Python's `str(round(v, 4))`, and existing searches parse that text, so we
//! reproduce CPython's rules exactly: shortest round-trip digits, fixed notation for `1e-4 <= |v| < 1e16`
//! (always with a `.0` for integral values), and exponent form (`5e-05`, `1e+16`) otherwise.

use std::fmt::Write;

/// Appends Python's `repr(v)` to `out`. Infinities print as JSON/pandas does in MLTK output: `inf`.
/// Callers that need MLTK's `Infinity` spelling use [`write_bound`].
pub fn write_repr(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("nan");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, e.g. "1.2345e-5" or "-3e2". Formatted
    // into a stack buffer: this runs once per output cell in the per-entity scorer.
    let mut buf = StackBuf::default();
    let _ = write!(buf, "{v:e}");
    let sci = buf.as_str();
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let mut dbuf = StackBuf::default();
    for c in mantissa.chars().filter(|c| *c != '.') {
        let _ = dbuf.write_char(c);
    }
    let digits = dbuf.as_str();
    if neg {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if exp + 1 >= n {
            out.push_str(&digits);
            for _ in 0..(exp + 1 - n) {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            let point = (exp + 1) as usize;
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// A small fixed buffer for formatting one float without allocating.
struct StackBuf {
    b: [u8; 40],
    n: usize,
}

impl Default for StackBuf {
    fn default() -> Self {
        StackBuf { b: [0; 40], n: 0 }
    }
}

impl StackBuf {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.b[..self.n]).expect("ASCII digits")
    }
}

impl Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.n + s.len();
        if end > self.b.len() {
            return Err(std::fmt::Error);
        }
        self.b[self.n..end].copy_from_slice(s.as_bytes());
        self.n = end;
        Ok(())
    }
}

/// Python's `repr(v)` as a new string.
pub fn repr(v: f64) -> String {
    let mut s = String::new();
    write_repr(&mut s, v);
    s
}

/// Python's `round(v, 4)`: the double nearest to `v` correctly rounded (half to even) to 4 decimals.
pub fn round4(v: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    // `{:.4}` rounds the exact binary value to 4 decimals, half to even, as CPython's dtoa does.
    let s = format!("{v:.4}");
    let r: f64 = s.parse().expect("formatted float parses");
    // Python keeps the sign of a value that rounds to zero (`round(-0.00001, 4)` is `-0.0`).
    if r == 0.0 && v.is_sign_negative() {
        -0.0
    } else {
        r
    }
}

/// Writes one boundary end as MLTK does: `str(round(v, 4))`, with `Infinity`/`-Infinity` for the open
/// ends. `integral` marks a value that pandas typed as an integer (the training minimum of an
/// all-integer column), which Python prints without `.0`.
pub fn write_bound(out: &mut String, v: f64, integral: bool) {
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "Infinity" } else { "-Infinity" });
    } else if integral && v.fract() == 0.0 && v.abs() < 1e18 {
        let _ = write!(out, "{}", v as i64);
    } else {
        write_repr(out, round4(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        let cases: &[(f64, &str)] = &[
            (8.0, "8.0"),
            (0.005, "0.005"),
            (5e-5, "5e-05"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (5e-10, "5e-10"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456.789, "123456.789"),
            (-4.2624, "-4.2624"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e22, "1e+22"),
            (-0.0, "-0.0"),
            (2.5e-308, "2.5e-308"),
            (18.911049999999992, "18.911049999999992"),
            (1e-06, "1e-06"),
            (100.0, "100.0"),
            (1234.5, "1234.5"),
        ];
        for (v, want) in cases {
            assert_eq!(repr(*v), *want, "repr({v:?})");
        }
    }

    #[test]
    fn round4_is_half_even_on_the_binary_value() {
        // 0.03125 is exactly representable: a true tie, rounded to even.
        assert_eq!(round4(0.03125), 0.0312);
        assert_eq!(round4(0.03135), 0.0314); // not a tie in binary (0.031350000000000003...)
        assert_eq!(round4(4.26239544573075), 4.2624);
        assert_eq!(round4(24.93760455426925), 24.9376);
        assert_eq!(repr(round4(-0.00001)), "-0.0");
        assert_eq!(repr(round4(1e-05)), "0.0");
    }

    #[test]
    fn bounds_print_like_mltk() {
        let mut s = String::new();
        write_bound(&mut s, f64::NEG_INFINITY, false);
        s.push(':');
        write_bound(&mut s, 8.0, true);
        s.push(':');
        write_bound(&mut s, 8.0, false);
        s.push(':');
        write_bound(&mut s, 38.3941232275214, false);
        assert_eq!(s, "-Infinity:8:8.0:38.3941");
    }
}
