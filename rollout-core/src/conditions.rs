//! Condition bookkeeping shared by the Argo machines, on a copy-on-write status so a
//! pass that changes nothing allocates nothing.

use std::borrow::Cow;

use crate::status::{ConditionStatus, ConditionType, RolloutCondition, RolloutStatus};
use crate::time::Timestamp;

/// Sets a condition; `lastTransitionTime` moves only when the status flips. Leaves the
/// status borrowed when the condition already says exactly this.
pub(crate) fn set_condition(
    st: &mut Cow<'_, RolloutStatus>,
    now: Timestamp,
    type_: ConditionType,
    status: ConditionStatus,
    reason: &str,
    message: &str,
) {
    if let Some(c) = st.condition(type_)
        && c.status == status
        && c.reason == reason
        && c.message == message
    {
        return;
    }
    let s = st.to_mut();
    match s.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(now);
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.last_update_time = Some(now);
        }
        None => s.conditions.push(RolloutCondition {
            type_,
            status,
            last_update_time: Some(now),
            last_transition_time: Some(now),
            reason: reason.to_string(),
            message: message.to_string(),
        }),
    }
}

/// Sets the Progressing condition and refreshes its `lastUpdateTime` (the progress
/// deadline counts from it).
pub(crate) fn set_progressing(
    st: &mut Cow<'_, RolloutStatus>,
    now: Timestamp,
    status: ConditionStatus,
    reason: &str,
    message: &str,
) {
    set_condition(st, now, ConditionType::Progressing, status, reason, message);
    if let Some(c) = st
        .to_mut()
        .conditions
        .iter_mut()
        .find(|c| c.type_ == ConditionType::Progressing)
    {
        c.last_update_time = Some(now);
    }
}

/// Progress was made: refresh a true Progressing condition's `lastUpdateTime`.
pub(crate) fn touch_progress(st: &mut Cow<'_, RolloutStatus>, now: Timestamp) {
    let needs = st
        .condition(ConditionType::Progressing)
        .is_some_and(|c| c.last_update_time != Some(now) && c.status == ConditionStatus::True);
    if needs
        && let Some(c) = st
            .to_mut()
            .conditions
            .iter_mut()
            .find(|c| c.type_ == ConditionType::Progressing)
    {
        c.last_update_time = Some(now);
    }
}
