//! Property tests (proptest): multivalue encoding round-trips, model store round-trips, and Python-style
//! float text against a committed reference list of CPython outputs (`tests/data/python_repr.txt`,
//! written by `tests/data/make_python_repr.py`).

use proptest::prelude::*;

use scpv2::body::{BodyReader, FieldValue, body_writer, field_value, mv_decode, mv_encode};
use smbdensity::density::{
    Area, BoundaryRange, DistKind, Distribution, Exponential, GroupStats, Normal, Threshold, pyfmt,
};
use smbdensity::model::store::{self, ModelStore};
use smbdensity::model::{DensityBody, Group, Model, ModelBody, ModelHeader, StoredParams};
use smbdensity::spl::{Metric, ModelName, Namespace, ThresholdSet};

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    // Biased towards the characters that matter to the encoding.
    prop::collection::vec(
        prop_oneof![
            4 => Just(b'$'),
            2 => Just(b';'),
            1 => Just(b'"'),
            1 => Just(b','),
            1 => Just(b'\n'),
            1 => Just(b'\r'),
            1 => Just(0u8),
            6 => any::<u8>(),
        ],
        0..max,
    )
}

/// Any double, NaN payloads and subnormals included.
fn f64_bits() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        any::<f64>(),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn multivalue_encoding_round_trips(values in prop::collection::vec(bytes(12), 0..6)) {
        let enc = mv_encode(values.iter());
        prop_assert_eq!(mv_decode(&enc), values);
    }

    #[test]
    fn multivalue_decoding_is_total_and_stable(s in bytes(40)) {
        let v = mv_decode(&s);
        prop_assert_eq!(mv_decode(&mv_encode(v.iter())), v);
    }

    /// Through CSV: a row written with the reply writer and read back with the body reader gives the
    /// same values for a field and its `__mv_` companion.
    #[test]
    fn multivalue_fields_survive_csv(values in prop::collection::vec(bytes(10), 2..5), plain in bytes(10)) {
        let mut buf = Vec::new();
        {
            let mut w = body_writer(&mut buf);
            w.write_record([&b"x"[..], b"__mv_x", b"y"]).unwrap();
            w.write_record([&values.join(&b'\n')[..], &mv_encode(values.iter()), &plain]).unwrap();
            w.flush().unwrap();
        }
        let mut r = BodyReader::new(&buf).unwrap();
        let mut rec = csv::ByteRecord::new();
        prop_assert!(r.read(&mut rec).unwrap());
        let h = r.header.clone();
        prop_assert_eq!(field_value(&h, &rec, h.find("x")), FieldValue::Many(values.clone()));
        let y = field_value(&h, &rec, h.find("y"));
        if plain.is_empty() {
            prop_assert_eq!(y, FieldValue::Empty);
        } else {
            prop_assert_eq!(y, FieldValue::One(std::borrow::Cow::Borrowed(&plain[..])));
        }
        prop_assert!(!r.read(&mut rec).unwrap());
    }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,12}".prop_map(|s| s),
        any::<String>(),
    ]
}

fn threshold() -> impl Strategy<Value = Threshold> {
    prop_oneof![
        f64_bits().prop_map(Threshold::Total),
        f64_bits().prop_map(Threshold::Lower),
        f64_bits().prop_map(Threshold::Upper),
        (f64_bits(), f64_bits()).prop_map(|(a, b)| Threshold::LowerUpper(a, b)),
    ]
}

fn area() -> impl Strategy<Value = Area> {
    prop_oneof![
        f64_bits().prop_map(Area::Exact),
        f64_bits().prop_map(Area::Rounded),
        Just(Area::Zero),
    ]
}

fn group() -> impl Strategy<Value = Group> {
    (
        prop::collection::vec(any::<u8>(), 0..24),
        (
            any::<u64>(),
            f64_bits(),
            f64_bits(),
            f64_bits(),
            f64_bits(),
            f64_bits(),
        ),
        prop_oneof![
            (f64_bits(), f64_bits())
                .prop_map(|(mean, std)| Distribution::Normal(Normal { mean, std })),
            (f64_bits(), f64_bits())
                .prop_map(|(loc, scale)| Distribution::Exponential(Exponential { loc, scale })),
        ],
        prop::collection::vec(
            prop::collection::vec(
                (f64_bits(), f64_bits(), area(), any::<bool>()).prop_map(
                    |(begin, end, area, end_integral)| BoundaryRange {
                        begin,
                        end,
                        area,
                        end_integral,
                        begin_integral: false,
                    },
                ),
                0..3,
            ),
            0..3,
        ),
    )
        .prop_map(
            |(key, (count, mean, m2, min, max, first), dist, boundaries)| Group {
                key,
                stats: GroupStats {
                    count,
                    mean,
                    m2,
                    min,
                    max,
                    first,
                },
                dist,
                distance: f64::NAN,
                sample: Vec::new(),
                boundaries,
            },
        )
}

fn model() -> impl Strategy<Value = Model> {
    let dist = prop_oneof![
        Just(DistKind::Auto),
        Just(DistKind::Normal),
        Just(DistKind::Exponential),
        Just(DistKind::GaussianKde),
        Just(DistKind::Beta),
    ];
    let params = (
        dist.clone(),
        prop::collection::vec(dist, 0..3),
        prop_oneof![Just(Metric::Wasserstein), Just(Metric::KolmogorovSmirnov)],
        prop::collection::vec(threshold(), 0..4),
        prop::collection::vec(text(), 0..3),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            proptest::option::of(any::<i64>()),
        ),
    )
        .prop_map(
            |(
                dist,
                exclude_dist,
                metric,
                items,
                labels,
                (show_density, sample, full_sample),
                (show_options, output_name, random_state),
            )| StoredParams {
                dist,
                exclude_dist,
                metric,
                thresholds: ThresholdSet { items, labels },
                show_density,
                sample,
                full_sample,
                show_options,
                output_name,
                random_state,
            },
        );
    (
        (
            text(),
            text(),
            prop::collection::vec(text(), 0..4),
            prop::collection::vec(text(), 0..6),
            text(),
            text(),
            any::<u64>(),
            any::<u64>(),
        ),
        params,
        any::<bool>(),
        prop::collection::vec(group(), 0..6),
    )
        .prop_map(
            |(
                (algorithm, feature, by_fields, args, app, owner, group_count, created),
                params,
                integral_feature,
                groups,
            )| Model {
                header: ModelHeader {
                    algorithm,
                    feature,
                    by_fields,
                    params,
                    args,
                    app,
                    owner,
                    group_count,
                    created,
                },
                body: ModelBody::Density(DensityBody {
                    integral_feature,
                    groups,
                    key_canon: Vec::new(),
                }),
            },
        )
}

/// Models hold NaN (no `==`), so equality is checked on a second encoding, which holds every stored
/// field bit for bit. (Normal and Exponential boundaries are not stored: they are recomputed exactly
/// from the distribution, so `Debug` text of the decoded model legitimately differs there.)
fn same(a: &Model, b: &Model) -> bool {
    store::encode_model(a) == store::encode_model(b)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn model_encoding_round_trips(m in model()) {
        let bytes = store::encode_model(&m);
        let back = store::decode(&bytes).expect("an encoded model decodes");
        prop_assert!(same(&m, &back));
        // Any truncation of it is refused, never misread.
        let cut = bytes.len() / 2;
        prop_assert!(store::decode(&bytes[..cut]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn model_store_round_trips_through_disk(m in model(), n in "[a-zA-Z_][a-zA-Z0-9_]{0,30}") {
        let dir = tempfile::tempdir().unwrap();
        let st = ModelStore::new(dir.path());
        let name = ModelName { name: n, namespace: Namespace::App };
        st.save(&name, &m, u64::MAX).unwrap();
        let back = st.load(&name).unwrap();
        prop_assert!(same(&m, &back));
        let h = st.load_header(&name).unwrap();
        prop_assert_eq!(format!("{:?}", h), format!("{:?}", m.header));
        // Saving again replaces it whole.
        st.save(&name, &m, u64::MAX).unwrap();
        prop_assert!(same(&m, &st.load(&name).unwrap()));
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        prop_assert_eq!(files.len(), 1, "temporary files left behind");
    }
}

/// Every value in the reference list prints as CPython prints it, and rounds as `round(v, 4)` does.
#[test]
fn python_float_text_matches_the_reference_list() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/python_repr.txt"
    ))
    .unwrap();
    let mut n = 0;
    let mut failures = Vec::new();
    for line in text.lines() {
        let mut f = line.split('\t');
        let (hex, repr, round) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let v = f64::from_bits(u64::from_str_radix(hex, 16).unwrap());
        let got_repr = pyfmt::repr(v);
        let got_round = pyfmt::repr(pyfmt::round4(v));
        if got_repr != repr || got_round != round {
            failures.push(format!(
                "{hex}: repr {got_repr} (python {repr}), round4 {got_round} (python {round})"
            ));
        }
        n += 1;
    }
    assert!(n > 5000, "only {n} reference values");
    assert!(
        failures.is_empty(),
        "{} of {n} differ:\n{}",
        failures.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
