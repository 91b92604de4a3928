//! Python-compatible float text: `repr(float)`, `round(v, 4)` and `str(int)`.
//!
//! MLTK prints boundaries with Python's `str(round(v, 4))`, and existing searches parse that text, so we
//! reproduce CPython's rules exactly: shortest round-trip digits, fixed notation for `1e-4 <= |v| < 1e16`
//! (always with a `.0` for integral values), and exponent form (`5e-05`, `1e+16`) otherwise.

/// Appends Python's `repr(v)` to `out`. Infinities print as JSON/pandas does in MLTK output: `inf`.
/// Callers that need MLTK's `Infinity` spelling use [`write_bound`].
pub fn write_repr(out: &mut String, v: f64) {
    let mut b = Vec::new();
    write_repr_bytes(&mut b, v);
    out.push_str(std::str::from_utf8(&b).expect("ASCII"));
}

/// The shortest round-trip decimal digits of a finite non-zero `|v|` (no leading or trailing zeros) and
/// the decimal exponent of the first digit: `v = d.ddd × 10^exp`.
#[inline]
fn shortest_digits(v: f64, digits: &mut [u8; 24]) -> (usize, i32) {
    let mut buf = ryu::Buffer::new();
    // ryu prints the shortest round-trip digits, as `1.2345e-5`, `123.45` or `0.00012`.
    let s = buf.format_finite(v.abs()).as_bytes();
    let (mut n, mut int_digits, mut seen_point) = (0usize, 0i32, false);
    let mut exp10 = 0i32;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'.' => seen_point = true,
            b'e' | b'E' => {
                let t = std::str::from_utf8(&s[i + 1..]).expect("ASCII");
                exp10 = t.parse().expect("ryu exponent is an integer");
                break;
            }
            d => {
                if n == 0 && d == b'0' {
                    // A leading zero: before the point it is no digit; after it, it shifts the exponent.
                    if seen_point {
                        int_digits -= 1;
                    }
                } else {
                    digits[n] = d;
                    n += 1;
                    if !seen_point {
                        int_digits += 1;
                    }
                }
            }
        }
        i += 1;
    }
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    (n, int_digits - 1 + exp10)
}

/// [`write_repr`] into bytes, without allocating.
pub fn write_repr_bytes(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    let mut d = [0u8; 24];
    let (n, exp) = shortest_digits(v, &mut d);
    let digits = &d[..n];
    if v < 0.0 {
        out.push(b'-');
    }
    write_digits(out, digits, exp);
}

/// Lays out the significant `digits` (no trailing zeros, first one non-zero) of a positive number
/// `0.d1d2... * 10^(exp + 1)` as Python's `repr` does: fixed notation for `-4 <= exp < 16`, else
/// `d.ddde±XX`.
pub fn write_digits(out: &mut Vec<u8>, digits: &[u8], exp: i32) {
    let n = digits.len() as i32;
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(digits);
        } else if exp + 1 >= n {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', (exp + 1 - n) as usize));
            out.extend_from_slice(b".0");
        } else {
            let point = (exp + 1) as usize;
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(itoa::Buffer::new().format(e).as_bytes());
    }
}

/// Python's `repr(v)` as a new string.
pub fn repr(v: f64) -> String {
    let mut s = String::new();
    write_repr(&mut s, v);
    s
}

/// `round(v, 4) * 10^4` as an integer, when it can be decided exactly from `v * 1e4` in floating point:
/// the product is within half an ulp of the exact one, so unless it lies that close to a half the
/// nearest integer is the same. Ties and huge values return `None` (the caller formats exactly).
#[inline]
fn round4_units(v: f64) -> Option<i64> {
    if v.is_nan() || v.abs() >= 1e11 {
        return None;
    }
    let p = v * 1e4;
    // floor(p) from the truncated integer (exact: |p| < 1e15), without a libm call: x86-64 has no
    // rounding instruction before SSE4.1.
    let t = p as i64;
    let tf = t as f64;
    let (floor, floor_f) = if tf > p { (t - 1, tf - 1.0) } else { (t, tf) };
    let f = p - floor_f;
    // ulp(p) <= |p| * 2^-52; keep a margin of two ulps from the half.
    if (f - 0.5).abs() <= p.abs() * (2.0 * f64::EPSILON) + f64::MIN_POSITIVE {
        return None;
    }
    // Away from a half, rounding is the floor or the next integer.
    Some(if f > 0.5 { floor + 1 } else { floor })
}

/// Python's `round(v, 4)`: the double nearest to `v` correctly rounded (half to even) to 4 decimals.
pub fn round4(v: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    let r = match round4_units(v) {
        // `n` and 1e4 are exact doubles, so the division is the double nearest to n/10^4, as parsing
        // its decimal text would give.
        Some(n) => n as f64 / 1e4,
        None => round4_slow(v),
    };
    // Python keeps the sign of a value that rounds to zero (`round(-0.00001, 4)` is `-0.0`).
    if r == 0.0 && v.is_sign_negative() {
        -0.0
    } else {
        r
    }
}

fn round4_slow(v: f64) -> f64 {
    // `{:.4}` rounds the exact binary value to 4 decimals, half to even, as CPython's dtoa does.
    let mut b = [0u8; 400];
    let mut w = &mut b[..];
    let cap = w.len();
    std::io::Write::write_fmt(&mut w, format_args!("{v:.4}")).expect("fits");
    let len = cap - w.len();
    std::str::from_utf8(&b[..len])
        .expect("ASCII")
        .parse()
        .expect("formatted float parses")
}

/// A short text in a fixed buffer: callers copy all 24 bytes (a copy of known size, no call) and keep
/// the first `len`.
#[derive(Clone, Copy, Debug)]
pub struct Short {
    pub bytes: [u8; 24],
    pub len: usize,
}

impl Short {
    /// `s` if it fits.
    pub fn new(s: &[u8]) -> Option<Short> {
        let mut bytes = [0; 24];
        bytes.get_mut(..s.len())?.copy_from_slice(s);
        Some(Short {
            bytes,
            len: s.len(),
        })
    }
}

/// `repr(round(v, 4))` when the integer path decides it, written at the start of `b` (24 bytes or
/// more); returns its length. |n| < 10^15, so n/10^4 has at most 15 significant digits, no shorter text
/// names the same double, and repr prints exactly those digits in fixed notation
/// (1e-4 <= |n/10^4| < 1e16). `None` (nothing written) for ties and huge values.
#[inline]
pub fn round4_into(v: f64, b: &mut [u8]) -> Option<usize> {
    let n = round4_units(v)?;
    let b = &mut b[..24];
    if n == 0 {
        let t: &[u8; 4] = if v.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0\0"
        };
        b[..4].copy_from_slice(t);
        return Some(if v.is_sign_negative() { 4 } else { 3 });
    }
    b[0] = b'-';
    let start = usize::from(n < 0);
    let a = n.unsigned_abs();
    let (mut int, frac) = (a / 10_000, (a % 10_000) as usize);
    // |v| < 1e11: at most 11 integer digits, written from the right two at a time.
    let len = start + int.checked_ilog10().map_or(1, |l| l as usize + 1);
    let mut i = len;
    while i >= start + 2 {
        let d = (int % 100) as usize * 2;
        b[i - 2..i].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
        int /= 100;
        i -= 2;
    }
    if i > start {
        b[start] = b'0' + int as u8;
    }
    b[len] = b'.';
    let (hi, lo) = (frac / 100 * 2, frac % 100 * 2);
    b[len + 1..len + 3].copy_from_slice(&DIGIT_PAIRS[hi..hi + 2]);
    b[len + 3..len + 5].copy_from_slice(&DIGIT_PAIRS[lo..lo + 2]);
    // Trailing zeros of the fraction go, but one digit stays.
    let keep = match frac {
        f if f % 1000 == 0 => 1,
        f if f % 100 == 0 => 2,
        f if f % 10 == 0 => 3,
        _ => 4,
    };
    Some(len + 1 + keep)
}

/// "00" to "99".
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes `repr(round(v, 4))` for a finite `v`.
#[inline]
pub fn write_round4_bytes(out: &mut Vec<u8>, v: f64) {
    let mut b = [0; 24];
    match round4_into(v, &mut b) {
        Some(n) => out.extend_from_slice(&b[..n]),
        None => write_repr_bytes(out, round4(v)),
    }
}

/// Writes one boundary end as MLTK does: `str(round(v, 4))`, with `Infinity`/`-Infinity` for the open
/// ends. `integral` marks a value that pandas typed as an integer (the training minimum of an
/// all-integer column), which Python prints without `.0`.
pub fn write_bound(out: &mut String, v: f64, integral: bool) {
    let mut b = Vec::new();
    write_bound_bytes(&mut b, v, integral);
    out.push_str(std::str::from_utf8(&b).expect("ASCII"));
}

/// [`write_bound`] into bytes, without allocating.
#[inline]
pub fn write_bound_bytes(out: &mut Vec<u8>, v: f64, integral: bool) {
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else if integral && v.fract() == 0.0 && v.abs() < 1e18 {
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else if v.is_nan() {
        out.extend_from_slice(b"nan");
    } else {
        write_round4_bytes(out, v);
    }
}

/// [`write_bound_bytes`]'s text written at the start of `b` (24 bytes or more), for the common cases:
/// open ends, NaN and values the integer rounding decides; returns its length. `None` for the rest
/// (integral values, ties, huge values).
#[inline]
pub fn bound_into(v: f64, integral: bool, b: &mut [u8]) -> Option<usize> {
    if v.is_infinite() {
        let (t, n): (&[u8; 9], usize) = if v > 0.0 {
            (b"Infinity\0", 8)
        } else {
            (b"-Infinity", 9)
        };
        b[..9].copy_from_slice(t);
        Some(n)
    } else if v.is_nan() {
        b[..3].copy_from_slice(b"nan");
        Some(3)
    } else if integral {
        None
    } else {
        round4_into(v, b)
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
            (-2.0156234722508763e14, "-201562347225087.62"),
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

#[cfg(test)]
mod fast_tests {
    use super::*;

    /// The old formatting path: `{:e}` digits and `{:.4}` rounding, kept as the reference.
    fn repr_ref(v: f64) -> String {
        if v == 0.0 || !v.is_finite() {
            return repr(v);
        }
        let sci = format!("{v:e}");
        let (m, e) = sci.split_once('e').unwrap();
        let exp: i32 = e.parse().unwrap();
        let (neg, m) = match m.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, m),
        };
        let digits: String = m.chars().filter(|c| *c != '.').collect();
        let mut out = String::new();
        if neg {
            out.push('-');
        }
        if (-4..16).contains(&exp) {
            let n = digits.len() as i32;
            if exp < 0 {
                out.push_str("0.");
                out.push_str(&"0".repeat((-exp - 1) as usize));
                out.push_str(&digits);
            } else if exp + 1 >= n {
                out.push_str(&digits);
                out.push_str(&"0".repeat((exp + 1 - n) as usize));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..(exp + 1) as usize]);
                out.push('.');
                out.push_str(&digits[(exp + 1) as usize..]);
            }
        } else {
            out.push_str(&digits[..1]);
            if digits.len() > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            out.push_str(&format!(
                "e{}{:02}",
                if exp < 0 { '-' } else { '+' },
                exp.abs()
            ));
        }
        out
    }

    fn round4_ref(v: f64) -> f64 {
        let r: f64 = format!("{v:.4}").parse().unwrap();
        if r == 0.0 && v.is_sign_negative() {
            -0.0
        } else {
            r
        }
    }

    #[test]
    fn fast_paths_match_the_reference() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..100_000 {
            let r = next();
            let v = match i % 4 {
                0 => f64::from_bits(r),
                1 => (r % 2_000_000_000) as f64 / 1e4 - 1e5, // ties and near-ties
                2 => ((r % 100_000_000) as f64 - 5e7) * 10f64.powi((r >> 40) as i32 % 30 - 15),
                _ => (r >> 11) as f64 / (1u64 << 53) as f64 * 100.0 - 50.0,
            };
            if !v.is_finite() {
                continue;
            }
            let (fast, old) = (repr(v), repr_ref(v));
            // Where two shortest digit strings are equally near (the exact value ends in 5), Rust's
            // `{:e}` rounds half up and ryu, like CPython, half to even; both round-trip.
            if fast != old {
                assert_eq!(fast.len(), old.len(), "repr {v:e}: {fast} vs {old}");
                assert_eq!(
                    fast.parse::<f64>().unwrap(),
                    v,
                    "repr {v:e}: {fast} vs {old}"
                );
            }
            let r4 = round4(v);
            assert_eq!(r4.to_bits(), round4_ref(v).to_bits(), "round4 {v:e}");
            // The integer rounding agrees with libm's floor and round wherever it decides.
            let p = v * 1e4;
            if let Some(n) = round4_units(v) {
                let f = p - p.floor();
                assert!((f - 0.5).abs() > p.abs() * (2.0 * f64::EPSILON), "{v:e}");
                assert_eq!(n, p.round() as i64, "round4_units {v:e}");
            }
            let mut b = Vec::new();
            write_round4_bytes(&mut b, v);
            assert_eq!(
                std::str::from_utf8(&b).unwrap(),
                repr(round4_ref(v)),
                "{v:e}"
            );
            for integral in [false, true] {
                let mut b = Vec::new();
                write_bound_bytes(&mut b, v, integral);
                let mut t = [0; 24];
                if let Some(n) = bound_into(v, integral, &mut t) {
                    assert_eq!(&t[..n], &b[..], "{v:e}");
                }
            }
        }
    }
}
