//! Ports of the two scipy optimizers behind `scipy.stats.beta.fit`: MINPACK's `hybrd` (what
//! `optimize.fsolve` runs for the moment-based start) and `optimize.fmin`'s Nelder–Mead.
//!
//! Where the fit stops depends on every step these take (scipy's Beta likelihood is often flat or
//! unbounded), so both follow scipy 1.17's C/Python code operation by operation, including the order of
//! floating-point operations, the stopping tests and the function-call budget.

// MINPACK's index arithmetic is kept as written so the port can be checked line by line.
#![allow(
    clippy::needless_range_loop,
    clippy::explicit_counter_loop,
    clippy::manual_memcpy
)]

/// Result of [`fsolve`] (MINPACK `hybrd`): the last iterate, MINPACK's `info` code (1 = converged) and the call count.
#[derive(Clone, Debug, PartialEq)]
pub struct HybrdResult {
    pub x: Vec<f64>,
    pub info: i32,
    pub nfev: usize,
}

/// MINPACK's `enorm`: the Euclidean norm with separate sums for tiny, ordinary and huge components.
fn enorm(x: &[f64]) -> f64 {
    let rgiant = 2f64.powf(63.5);
    let rdwarf = 0.5 / rgiant;
    let (mut s1, mut s2, mut s3, mut x1max, mut x3max) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let agiant = rgiant / x.len() as f64;
    for &v in x {
        let xabs = v.abs();
        if xabs <= rdwarf || xabs >= agiant {
            if xabs > rdwarf {
                if xabs > x1max {
                    let r = x1max / xabs;
                    s1 = 1.0 + s1 * (r * r);
                    x1max = xabs;
                } else {
                    let r = xabs / x1max;
                    s1 += r * r;
                }
            } else if xabs > x3max {
                let r = x3max / xabs;
                s3 = 1.0 + s3 * (r * r);
                x3max = xabs;
            } else if xabs != 0.0 {
                let r = xabs / x3max;
                s3 += r * r;
            }
        } else {
            s2 += xabs * xabs;
        }
    }
    if s1 != 0.0 {
        return x1max * (s1 + (s2 / x1max) / x1max).sqrt();
    }
    if s2 != 0.0 {
        return if s2 >= x3max {
            (s2 * (1.0 + (x3max / s2) * (x3max * s3))).sqrt()
        } else {
            (x3max * ((s2 / x3max) + (x3max * s3))).sqrt()
        };
    }
    x3max * s3.sqrt()
}

/// MINPACK's `qrfac` without pivoting on an n×n column-major matrix: Householder QR in place.
/// Returns the diagonal of R and the column norms of the input.
fn qrfac(n: usize, a: &mut [f64]) -> (Vec<f64>, Vec<f64>) {
    let mut acnorm = vec![0.0; n];
    let mut rdiag = vec![0.0; n];
    for j in 0..n {
        acnorm[j] = enorm(&a[j * n..j * n + n]);
        rdiag[j] = acnorm[j];
    }
    for j in 0..n {
        let mut ajnorm = enorm(&a[j * n + j..j * n + n]);
        if ajnorm == 0.0 {
            rdiag[j] = -ajnorm;
            continue;
        }
        if a[j + n * j] < 0.0 {
            ajnorm = -ajnorm;
        }
        for i in j..n {
            a[i + n * j] /= ajnorm;
        }
        a[j + n * j] += 1.0;
        if j + 1 < n {
            for k in j + 1..n {
                let mut sum = 0.0;
                for i in j..n {
                    sum += a[i + n * j] * a[i + n * k];
                }
                let temp = sum / a[j + n * j];
                for i in j..n {
                    a[i + n * k] -= temp * a[i + n * j];
                }
            }
        }
        rdiag[j] = -ajnorm;
    }
    (rdiag, acnorm)
}

/// MINPACK's `qform`: accumulates the orthogonal Q of [`qrfac`] into `q` (n×n, column-major).
fn qform(n: usize, q: &mut [f64]) {
    for j in 1..n {
        for i in 0..j {
            q[i + j * n] = 0.0;
        }
    }
    let mut wa = vec![0.0; n];
    for l in 0..n {
        let k = n - l - 1;
        for i in k..n {
            wa[i] = q[i + n * k];
            q[i + n * k] = 0.0;
        }
        q[k + n * k] = 1.0;
        if wa[k] != 0.0 {
            for j in k..n {
                let mut sum = 0.0;
                for i in k..n {
                    sum += q[i + n * j] * wa[i];
                }
                let temp = sum / wa[k];
                for i in k..n {
                    q[i + n * j] -= temp * wa[i];
                }
            }
        }
    }
}

/// MINPACK's `dogleg`: the step within the trust region `delta` combining the Gauss–Newton and the
/// scaled gradient directions. `r` is upper triangular stored by rows.
fn dogleg(n: usize, r: &[f64], diag: &[f64], qtb: &[f64], delta: f64, x: &mut [f64]) {
    let epsmch = f64::EPSILON;
    let mut wa1 = vec![0.0; n];
    let mut wa2 = vec![0.0; n];
    let mut jj = n * (n + 1) / 2;
    for k in 0..n {
        let j = n - k - 1;
        jj -= k + 1;
        let mut l = jj + 1;
        let mut sum = 0.0;
        for i in j + 1..n {
            sum += r[l] * x[i];
            l += 1;
        }
        let mut temp = r[jj];
        if temp == 0.0 {
            let mut l = j;
            for i in 0..=j {
                temp = temp.max(r[l].abs());
                l += n - i - 1;
            }
            temp *= epsmch;
            if temp == 0.0 {
                temp = epsmch;
            }
        }
        x[j] = (qtb[j] - sum) / temp;
    }
    for j in 0..n {
        wa1[j] = 0.0;
        wa2[j] = diag[j] * x[j];
    }
    let qnorm = enorm(&wa2);
    if qnorm <= delta {
        return;
    }
    let mut l = 0;
    for j in 0..n {
        let temp = qtb[j];
        for i in j..n {
            wa1[i] += r[l] * temp;
            l += 1;
        }
        wa1[j] /= diag[j];
    }
    let gnorm = enorm(&wa1);
    let mut sgnorm = 0.0;
    let mut alpha = delta / qnorm;
    if gnorm != 0.0 {
        for j in 0..n {
            wa1[j] /= gnorm;
            wa1[j] /= diag[j];
        }
        let mut l = 0;
        for j in 0..n {
            let mut sum = 0.0;
            for i in j..n {
                sum += r[l] * wa1[i];
                l += 1;
            }
            wa2[j] = sum;
        }
        let temp = enorm(&wa2);
        sgnorm = (gnorm / temp) / temp;
        alpha = 0.0;
        if sgnorm < delta {
            let bnorm = enorm(qtb);
            let dq = delta / qnorm;
            let sd = sgnorm / delta;
            let mut temp = (bnorm / gnorm) * (bnorm / qnorm) * sd;
            temp = temp - dq * (sd * sd)
                + ((temp - dq) * (temp - dq) + (1.0 - dq * dq) * (1.0 - sd * sd)).sqrt();
            alpha = (dq * (1.0 - sd * sd)) / temp;
        }
    }
    let temp = (1.0 - alpha) * sgnorm.min(delta);
    for j in 0..n {
        x[j] = temp * wa1[j] + alpha * x[j];
    }
}

/// A Givens rotation's (cos, sin, tau) eliminating `b` against `a`, as `r1updt` forms it.
fn givens(a: f64, b: f64, giant_guard: bool) -> (f64, f64, f64) {
    if a.abs() < b.abs() {
        let cotan = a / b;
        let sin = 0.5 / (0.25 + 0.25 * (cotan * cotan)).sqrt();
        let cos = sin * cotan;
        let mut tau = 1.0;
        if giant_guard && cos.abs() * f64::MAX > 1.0 {
            tau = 1.0 / cos;
        }
        (cos, sin, tau)
    } else {
        let tan = b / a;
        let cos = 0.5 / (0.25 + 0.25 * (tan * tan)).sqrt();
        let sin = cos * tan;
        (cos, sin, sin)
    }
}

/// MINPACK's `r1updt` for a square n×n triangle `s` (stored by columns of the lower trapezoid, i.e.
/// R by rows): makes `(s + u vᵀ) Q` triangular again, returning the rotations in `v` and `w`.
fn r1updt(n: usize, s: &mut [f64], u: &[f64], v: &mut [f64], w: &mut [f64]) -> bool {
    let m = n;
    // 1-based positions, as in MINPACK, to keep the pointer arithmetic recognisable.
    let mut jj = (n * (2 * m - n + 1)) / 2 - (m - n);
    let mut l = jj;
    for i in n..=m {
        w[i - 1] = s[l - 1];
        l += 1;
    }
    let nm1 = n - 1;
    for nmj in 1..=nm1 {
        let j = n - nmj;
        jj -= m - j + 1;
        w[j - 1] = 0.0;
        if v[j - 1] != 0.0 {
            let (cos, sin, tau) = givens(v[n - 1], v[j - 1], true);
            v[n - 1] = sin * v[j - 1] + cos * v[n - 1];
            v[j - 1] = tau;
            let mut l = jj;
            for i in j..=m {
                let temp = cos * s[l - 1] - sin * w[i - 1];
                w[i - 1] = sin * s[l - 1] + cos * w[i - 1];
                s[l - 1] = temp;
                l += 1;
            }
        }
    }
    for i in 0..m {
        w[i] += v[n - 1] * u[i];
    }
    let mut sing = false;
    for j in 1..=nm1 {
        if w[j - 1] != 0.0 {
            let (cos, sin, tau) = givens(s[jj - 1], w[j - 1], true);
            let mut l = jj;
            for i in j..=m {
                let temp = cos * s[l - 1] + sin * w[i - 1];
                w[i - 1] = -sin * s[l - 1] + cos * w[i - 1];
                s[l - 1] = temp;
                l += 1;
            }
            w[j - 1] = tau;
        }
        if s[jj - 1] == 0.0 {
            sing = true;
        }
        jj += m - j + 1;
    }
    let mut l = jj;
    for i in n..=m {
        s[l - 1] = w[i - 1];
        l += 1;
    }
    if s[jj - 1] == 0.0 {
        sing = true;
    }
    sing
}

/// MINPACK's `r1mpyq`: `a ← a·Q` for the rotations recorded by [`r1updt`]; `a` is m×n column-major
/// with leading dimension `lda`.
fn r1mpyq(m: usize, n: usize, a: &mut [f64], lda: usize, v: &[f64], w: &[f64]) {
    if n < 2 {
        return;
    }
    let rot = |t: f64| {
        if t.abs() > 1.0 {
            let cos = 1.0 / t;
            (cos, (1.0 - cos * cos).sqrt())
        } else {
            (((1.0 - t * t).sqrt()), t)
        }
    };
    for k in 0..n - 1 {
        let j = n - k - 2;
        let (cos, sin) = rot(v[j]);
        for i in 0..m {
            let temp = cos * a[i + j * lda] - sin * a[i + (n - 1) * lda];
            a[i + (n - 1) * lda] = sin * a[i + j * lda] + cos * a[i + (n - 1) * lda];
            a[i + j * lda] = temp;
        }
    }
    for j in 0..n - 1 {
        let (cos, sin) = rot(w[j]);
        for i in 0..m {
            let temp = cos * a[i + j * lda] + sin * a[i + (n - 1) * lda];
            a[i + (n - 1) * lda] = -sin * a[i + j * lda] + cos * a[i + (n - 1) * lda];
            a[i + j * lda] = temp;
        }
    }
}

/// `scipy.optimize.fsolve(f, x0)` with its defaults: MINPACK `hybrd` with a dense forward-difference
/// Jacobian (`epsfcn` = machine epsilon), internal scaling (mode 1), `factor = 100`,
/// `xtol = 1.49012e-8` and at most `200·(n+1)` calls. Like fsolve, the last iterate is returned even
/// when `info != 1`.
pub fn fsolve(mut f: impl FnMut(&[f64], &mut [f64]), x0: &[f64]) -> HybrdResult {
    let n = x0.len();
    let xtol = 1.49012e-08;
    let maxfev = 200 * (n + 1);
    let factor = 100.0;
    let epsmch = f64::EPSILON;
    let eps = epsmch.sqrt();

    let mut x = x0.to_vec();
    let mut fvec = vec![0.0; n];
    f(&x, &mut fvec);
    let mut nfev = 1;
    let mut fnorm = enorm(&fvec);
    let mut info = 0;

    let (mut iter, mut ncsuc, mut ncfail, mut nslow1, mut nslow2) = (1usize, 0, 0, 0, 0);
    let mut diag = vec![0.0; n];
    let (mut delta, mut xnorm) = (0.0, 0.0);
    let mut fjac = vec![0.0; n * n];
    let mut r = vec![0.0; n * (n + 1) / 2];
    let mut qtf = vec![0.0; n];
    let (mut wa1, mut wa2, mut wa3, mut wa4) =
        (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);

    'outer: loop {
        let mut jeval = true;
        // Forward-difference Jacobian, one column per call.
        for j in 0..n {
            let temp = x[j];
            let mut h = eps * temp.abs();
            if h == 0.0 {
                h = eps;
            }
            x[j] = temp + h;
            f(&x, &mut wa1);
            x[j] = temp;
            for i in 0..n {
                fjac[i + n * j] = (wa1[i] - fvec[i]) / h;
            }
        }
        nfev += n;

        let (rdiag, acnorm) = qrfac(n, &mut fjac);
        if iter == 1 {
            for j in 0..n {
                diag[j] = if acnorm[j] == 0.0 { 1.0 } else { acnorm[j] };
            }
            for j in 0..n {
                wa3[j] = diag[j] * x[j];
            }
            xnorm = enorm(&wa3);
            delta = factor * xnorm;
            if delta == 0.0 {
                delta = factor;
            }
        }
        qtf.copy_from_slice(&fvec);
        for j in 0..n {
            if fjac[j + n * j] != 0.0 {
                let mut sum = 0.0;
                for i in j..n {
                    sum += fjac[i + n * j] * qtf[i];
                }
                let temp = -sum / fjac[j + n * j];
                for i in j..n {
                    qtf[i] += fjac[i + n * j] * temp;
                }
            }
        }
        for j in 0..n {
            let mut l = j;
            for i in 0..j {
                r[l] = fjac[i + n * j];
                l += n - i - 1;
            }
            r[l] = rdiag[j];
        }
        qform(n, &mut fjac);
        for j in 0..n {
            diag[j] = diag[j].max(acnorm[j]);
        }

        loop {
            dogleg(n, &r, &diag, &qtf, delta, &mut wa1);
            for j in 0..n {
                wa1[j] = -wa1[j];
                wa2[j] = x[j] + wa1[j];
                wa3[j] = diag[j] * wa1[j];
            }
            let pnorm = enorm(&wa3);
            if iter == 1 {
                delta = delta.min(pnorm);
            }
            f(&wa2, &mut wa4);
            nfev += 1;
            let fnorm1 = enorm(&wa4);
            let actred = if fnorm1 < fnorm {
                let q = fnorm1 / fnorm;
                1.0 - q * q
            } else {
                -1.0
            };
            let mut l = 0;
            for i in 0..n {
                let mut sum = 0.0;
                for j in i..n {
                    sum += r[l] * wa1[j];
                    l += 1;
                }
                wa3[i] = qtf[i] + sum;
            }
            let temp = enorm(&wa3);
            let prered = if temp < fnorm {
                let q = temp / fnorm;
                1.0 - q * q
            } else {
                0.0
            };
            let ratio = if prered > 0.0 { actred / prered } else { 0.0 };

            if ratio < 0.1 {
                ncsuc = 0;
                ncfail += 1;
                delta *= 0.5;
            } else {
                ncfail = 0;
                ncsuc += 1;
                if ratio >= 0.5 || ncsuc > 1 {
                    delta = delta.max(pnorm / 0.5);
                }
                if (ratio - 1.0).abs() <= 0.1 {
                    delta = pnorm / 0.5;
                }
            }
            if ratio >= 1e-4 {
                for j in 0..n {
                    x[j] = wa2[j];
                    wa2[j] = diag[j] * x[j];
                    fvec[j] = wa4[j];
                }
                xnorm = enorm(&wa2);
                fnorm = fnorm1;
                iter += 1;
            }
            nslow1 += 1;
            if actred >= 0.001 {
                nslow1 = 0;
            }
            if jeval {
                nslow2 += 1;
            }
            if actred >= 0.1 {
                nslow2 = 0;
            }
            if delta <= xtol * xnorm || fnorm == 0.0 {
                info = 1;
            }
            if info != 0 {
                break 'outer;
            }
            if nfev >= maxfev {
                info = 2;
            }
            if 0.1 * (0.1 * delta).max(pnorm) <= epsmch * xnorm {
                info = 3;
            }
            if nslow2 == 5 {
                info = 4;
            }
            if nslow1 == 10 {
                info = 5;
            }
            if info != 0 {
                break 'outer;
            }
            if ncfail == 2 {
                break;
            }
            // Broyden rank-one update of the Jacobian's QR factors.
            for j in 0..n {
                let mut sum = 0.0;
                for i in 0..n {
                    sum += fjac[i + n * j] * wa4[i];
                }
                wa2[j] = (sum - wa3[j]) / pnorm;
                wa1[j] = diag[j] * ((diag[j] * wa1[j]) / pnorm);
                if ratio >= 1e-4 {
                    qtf[j] = sum;
                }
            }
            r1updt(n, &mut r, &wa1, &mut wa2, &mut wa3);
            r1mpyq(n, n, &mut fjac, n, &wa2, &wa3);
            r1mpyq(1, n, &mut qtf, 1, &wa2, &wa3);
            jeval = false;
        }
    }
    HybrdResult { x, info, nfev }
}

/// Result of [`fmin`]: the best vertex, its value, and the number of function calls.
#[derive(Clone, Debug, PartialEq)]
pub struct FminResult {
    pub x: Vec<f64>,
    pub fun: f64,
    pub nfev: usize,
    pub iterations: usize,
}

/// numpy's `argsort` of a handful of values (insertion sort, so equal values keep their order);
/// NaN sorts last.
fn argsort(v: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (v[a], v[b]);
        match (x.is_nan(), y.is_nan()) {
            (false, false) => x.partial_cmp(&y).expect("not NaN"),
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
        }
    });
    idx
}

/// numpy's `max` (NaN propagates).
fn np_max(v: impl Iterator<Item = f64>) -> f64 {
    let mut m = f64::NEG_INFINITY;
    for x in v {
        if x.is_nan() {
            return f64::NAN;
        }
        if x > m {
            m = x;
        }
    }
    m
}

/// `scipy.optimize.fmin(f, x0, xtol=1e-4, ftol=1e-4)`: non-adaptive Nelder–Mead with scipy's initial
/// simplex (5 % steps, 0.00025 for zero coordinates), at most `200·N` iterations and calls. When the
/// call budget runs out mid-iteration, the iteration is abandoned exactly as scipy's
/// `_MaxFuncCallError` does.
pub fn fmin(mut f: impl FnMut(&[f64]) -> f64, x0: &[f64]) -> FminResult {
    let n = x0.len();
    let (xatol, fatol) = (1e-4, 1e-4);
    let maxiter = 200 * n;
    let maxfun = 200 * n;
    let mut ncalls = 0usize;
    // Each call checks the budget first, as scipy's wrapper does.
    let mut call = |x: &[f64], ncalls: &mut usize| -> Option<f64> {
        if *ncalls >= maxfun {
            return None;
        }
        *ncalls += 1;
        Some(f(x))
    };

    let mut sim: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
    sim.push(x0.to_vec());
    for k in 0..n {
        let mut y = x0.to_vec();
        y[k] = if y[k] != 0.0 {
            (1.0 + 0.05) * y[k]
        } else {
            0.00025
        };
        sim.push(y);
    }
    let mut fsim = vec![f64::INFINITY; n + 1];
    for k in 0..=n {
        fsim[k] = call(&sim[k], &mut ncalls).expect("initial simplex is within budget");
    }
    // Reorders the vertices by value, moving them rather than copying.
    let sort = |sim: &mut Vec<Vec<f64>>, fsim: &mut Vec<f64>| {
        let ind = argsort(fsim);
        let mut old = std::mem::take(sim);
        *sim = ind.iter().map(|&i| std::mem::take(&mut old[i])).collect();
        *fsim = ind.iter().map(|&i| fsim[i]).collect();
    };
    sort(&mut sim, &mut fsim);

    let mut iterations = 1;
    let combine = |a: f64, xbar: &[f64], b: f64, y: &[f64]| -> Vec<f64> {
        xbar.iter().zip(y).map(|(xb, yv)| a * xb - b * yv).collect()
    };
    'iter: while ncalls < maxfun && iterations < maxiter {
        let xspread = np_max(
            sim[1..]
                .iter()
                .flat_map(|s| s.iter().zip(&sim[0]).map(|(a, b)| (a - b).abs())),
        );
        let fspread = np_max(fsim[1..].iter().map(|v| (fsim[0] - v).abs()));
        if xspread <= xatol && fspread <= fatol {
            break;
        }
        // np.add.reduce over rows adds them in order.
        let mut xbar = sim[0].clone();
        for s in &sim[1..n] {
            for (a, b) in xbar.iter_mut().zip(s) {
                *a += b;
            }
        }
        for a in &mut xbar {
            *a /= n as f64;
        }
        // rho = 1, chi = 2, psi = 0.5, sigma = 0.5.
        let xr = combine(2.0, &xbar, 1.0, &sim[n]);
        let Some(fxr) = call(&xr, &mut ncalls) else {
            break 'iter;
        };
        if fxr < fsim[0] {
            let xe = combine(3.0, &xbar, 2.0, &sim[n]);
            let Some(fxe) = call(&xe, &mut ncalls) else {
                break 'iter;
            };
            if fxe < fxr {
                sim[n] = xe;
                fsim[n] = fxe;
            } else {
                sim[n] = xr;
                fsim[n] = fxr;
            }
        } else if fxr < fsim[n - 1] {
            sim[n] = xr;
            fsim[n] = fxr;
        } else {
            let mut doshrink = false;
            if fxr < fsim[n] {
                let xc = combine(1.5, &xbar, 0.5, &sim[n]);
                let Some(fxc) = call(&xc, &mut ncalls) else {
                    break 'iter;
                };
                if fxc <= fxr {
                    sim[n] = xc;
                    fsim[n] = fxc;
                } else {
                    doshrink = true;
                }
            } else {
                let xcc: Vec<f64> = xbar
                    .iter()
                    .zip(&sim[n])
                    .map(|(xb, l)| 0.5 * xb + 0.5 * l)
                    .collect();
                let Some(fxcc) = call(&xcc, &mut ncalls) else {
                    break 'iter;
                };
                if fxcc < fsim[n] {
                    sim[n] = xcc;
                    fsim[n] = fxcc;
                } else {
                    doshrink = true;
                }
            }
            if doshrink {
                for j in 1..=n {
                    let (best, rest) = sim.split_at_mut(1);
                    for (b, a) in rest[j - 1].iter_mut().zip(&best[0]) {
                        *b = a + 0.5 * (*b - a);
                    }
                    let Some(v) = call(&sim[j], &mut ncalls) else {
                        break 'iter;
                    };
                    fsim[j] = v;
                }
            }
        }
        iterations += 1;
        sort(&mut sim, &mut fsim);
    }
    let fun = fsim.iter().copied().fold(f64::INFINITY, f64::min);
    FminResult {
        x: sim[0].clone(),
        fun,
        nfev: ncalls,
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enorm_is_the_euclidean_norm() {
        assert_eq!(enorm(&[3.0, 4.0]), 5.0);
        assert!((enorm(&[3e200, 4e200]) - 5e200).abs() < 1e186);
        assert!((enorm(&[3e-200, 4e-200]) - 5e-200).abs() < 1e-214);
    }

    #[test]
    fn fsolve_finds_a_root() {
        // x² + y² = 4, x = y.
        let r = fsolve(
            |x, out| {
                out[0] = x[0] * x[0] + x[1] * x[1] - 4.0;
                out[1] = x[0] - x[1];
            },
            &[1.0, 0.5],
        );
        // scipy.optimize.fsolve evaluates the same 10 points (it reports 12 calls: two shape checks at x0).
        assert_eq!((r.info, r.nfev), (1, 10));
        assert_eq!(r.x, vec![std::f64::consts::SQRT_2; 2]);
    }

    #[test]
    fn fmin_minimises_rosenbrock_like_scipy() {
        let rosen = |x: &[f64]| 100.0 * (x[1] - x[0] * x[0]).powi(2) + (1.0 - x[0]).powi(2);
        let r = fmin(rosen, &[-1.2, 1.0]);
        // scipy.optimize.fmin(rosen, [-1.2, 1], full_output=True): 85 iterations, 159 calls.
        assert_eq!(r.nfev, 159);
        assert_eq!(r.x, vec![1.0000220217835696, 1.0000422197517715]);
    }
}
