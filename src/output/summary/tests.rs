use super::*;

#[test]
fn nearest_rank_percentiles() {
    let mut v: Vec<u32> = (1..=100).rev().collect();
    assert_eq!(
        percentiles(&mut v),
        Latency {
            p50: 50,
            p95: 95,
            max: 100
        }
    );
    assert_eq!(percentiles(&mut []), Latency::default());
    let mut one = [7];
    assert_eq!(
        percentiles(&mut one),
        Latency {
            p50: 7,
            p95: 7,
            max: 7
        }
    );
    let mut three = [10, 30, 20];
    assert_eq!(percentiles(&mut three).p50, 20);
    assert_eq!(percentiles(&mut three).p95, 30);
}

#[test]
fn top_errors_sorted_by_count_then_message() {
    let mut m = HashMap::new();
    m.insert((ErrorKind::Timeout, "b".to_string()), 2);
    m.insert((ErrorKind::Http, "a".to_string()), 2);
    m.insert((ErrorKind::Http, "z".to_string()), 5);
    for i in 0..10 {
        m.insert((ErrorKind::Network, format!("n{i}")), 1);
    }
    let top = top_errors(m);
    let got: Vec<(&str, u64)> = top.iter().map(|e| (e.message.as_str(), e.count)).collect();
    assert_eq!(got, [("z", 5), ("a", 2), ("b", 2), ("n0", 1), ("n1", 1)]);
}

#[test]
fn times_round_trip_in_utc() {
    let t = parse_time("2024-05-01T10:00:00.250+02:00").unwrap();
    assert_eq!(format_time(t).unwrap(), "2024-05-01T08:00:00.25Z");
}
