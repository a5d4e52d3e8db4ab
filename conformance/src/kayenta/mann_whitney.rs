//! Adapter for `kayenta/mann_whitney.json`: [`wilcoxon_diff`], [`normal_quantile`],
//! [`mann_whitney_u_test`] and the intermediate values of the interval computation
//! ([`shift_range`], [`wilcoxon_root`]). Each case's recorded `abs_tol` applies; a case
//! without one compares exactly.

use rollout_analysis::judge::{
    mann_whitney_u_test, normal_quantile, shift_range, wilcoxon_diff, wilcoxon_root,
};
use serde_json::Value as Json;

use super::{close, num, num_array, req_num};
use crate::{Case, CaseResult};

/// Runs one case of `kayenta/mann_whitney.json`, dispatching on its `kind`.
pub fn run_case(case: &Case<'_>) -> CaseResult {
    let result = match case.kind {
        "wilcoxon_diff" => diff(case.input),
        "normal_inverse_cdf" => quantile(case.input, case.expected),
        "mann_whitney_u_test" => u_test(case.input, case.expected),
        "mann_whitney_intermediates" => intermediates(case.input, case.expected),
        other => Err(format!("unknown kind {other:?}")),
    };
    match result {
        Ok(()) => CaseResult::Pass,
        Err(e) => CaseResult::Fail(e),
    }
}

fn tol(input: &Json, key: Option<&str>) -> Result<f64, String> {
    match input.get("abs_tol") {
        None | Some(Json::Null) => Ok(0.0),
        Some(Json::Object(m)) => match key.and_then(|k| m.get(k)) {
            Some(t) => num(t, "abs_tol"),
            None => Err(format!("abs_tol has no entry {key:?}")),
        },
        Some(t) => num(t, "abs_tol"),
    }
}

fn diff(input: &Json) -> Result<(), String> {
    let x = num_array(input, "x")?;
    let y = num_array(input, "y")?;
    let t = tol(input, None)?;
    let calls = input
        .get("calls")
        .and_then(Json::as_array)
        .ok_or("missing calls")?;
    if calls.is_empty() {
        return Err("no calls".into());
    }
    for call in calls {
        let mu = req_num(call, "mu")?;
        let q = req_num(call, "quantile")?;
        let want = req_num(call, "expect")?;
        let got = wilcoxon_diff(mu, q, &x, &y).map_err(|e| format!("mu={mu}: {e}"))?;
        close(&format!("wilcoxon_diff(mu={mu}, q={q})"), got, want, t)?;
    }
    Ok(())
}

fn quantile(input: &Json, expected: &Json) -> Result<(), String> {
    let p = req_num(input, "p")?;
    let want = num(expected, "expect")?;
    close(
        "normal quantile",
        normal_quantile(p),
        want,
        tol(input, None)?,
    )
}

fn u_test(input: &Json, expected: &Json) -> Result<(), String> {
    let e = num_array(input, "experiment")?;
    let c = num_array(input, "control")?;
    let conf = req_num(input, "confidence_level")?;
    let r = mann_whitney_u_test(&e, &c, conf).map_err(|e| e.to_string())?;
    let ci = tol(input, Some("ci"))?;
    close(
        "ci_lower",
        r.lower_confidence,
        req_num(expected, "ci_lower")?,
        ci,
    )?;
    close(
        "ci_upper",
        r.upper_confidence,
        req_num(expected, "ci_upper")?,
        ci,
    )?;
    close(
        "estimate",
        r.estimate,
        req_num(expected, "estimate")?,
        tol(input, Some("estimate"))?,
    )
}

fn intermediates(input: &Json, expected: &Json) -> Result<(), String> {
    let x = num_array(input, "x")?;
    let y = num_array(input, "y")?;
    let conf = req_num(input, "confidence_level")?;
    let t = tol(input, None)?;
    let map = expected.as_object().ok_or("expect is not an object")?;
    let (mu_min, mu_max) = shift_range(&x, &y).ok_or("empty sample")?;
    let zq_pos = -normal_quantile((1.0 - conf) / 2.0);
    let zq_neg = -zq_pos;
    let f = |mu: f64, q: f64| wilcoxon_diff(mu, q, &x, &y).map_err(|e| e.to_string());
    let root = |q: f64| wilcoxon_root(q, &x, &y).map_err(|e| e.to_string());
    for (key, want) in map {
        let got = match key.as_str() {
            "mu_min" => mu_min,
            "mu_max" => mu_max,
            "zq_pos" => zq_pos,
            "zq_neg" => zq_neg,
            "f_at_mu_min_with_zq_pos" => f(mu_min, zq_pos)?,
            "f_at_mu_max_with_zq_pos" => f(mu_max, zq_pos)?,
            "f_at_mu_min_with_zq_neg" => f(mu_min, zq_neg)?,
            "f_at_mu_max_with_zq_neg" => f(mu_max, zq_neg)?,
            "brent_root_with_zq_pos" => root(zq_pos)?,
            "brent_root_with_zq_neg" => root(zq_neg)?,
            "brent_root_with_zq_0" => root(0.0)?,
            other => return Err(format!("unknown expectation {other:?}")),
        };
        close(key, got, num(want, key)?, t)?;
    }
    Ok(())
}
