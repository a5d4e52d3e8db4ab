//! The stage table of a blue-green `Rollout`.
//!
//! A blue-green rollout has no steps; it moves through fixed stages: the preview set
//! comes up (at `previewReplicaCount` or full size) behind `previewService`,
//! pre-promotion analysis runs, the rollout pauses (until promoted, or for
//! `autoPromotionSeconds`), the preview grows to full size, `activeService` switches,
//! post-promotion analysis runs, and the old set is scaled down after
//! `scaleDownDelaySeconds`. [`plan_blue_green`] lists the stages a manifest goes through,
//! with pod counts, so a reviewer sees what the promotion will do.

use std::fmt;

use super::PlanError;
use crate::spec::{BlueGreenStrategy, Rollout, RolloutAnalysis};

/// What a stage waits for before the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StageWait {
    /// The preview's pods to be available.
    PodsReady,
    /// An AnalysisRun of these templates to succeed.
    Analysis(Vec<String>),
    /// A user to promote (`kubectl argo rollouts promote`).
    Promotion,
    /// A fixed time, in seconds.
    Seconds(i64),
    /// Nothing.
    Nothing,
}

/// One stage of a blue-green update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// What happens.
    pub action: String,
    /// Pods of the new (preview) ReplicaSet during the stage.
    pub new_pods: i32,
    /// Pods of the old (active) ReplicaSet during the stage.
    pub old_pods: i32,
    /// Which ReplicaSet the active service selects: `old` or `new`.
    pub active: &'static str,
    /// What the stage waits for.
    pub waits_for: StageWait,
}

/// The stages of a blue-green update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlueGreenPlan {
    /// Rollout name.
    pub name: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// The active service.
    pub active_service: String,
    /// The preview service, if any.
    pub preview_service: Option<String>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
}

fn templates(a: &RolloutAnalysis) -> Vec<String> {
    a.templates
        .iter()
        .map(|t| t.template_name.clone())
        .collect()
}

/// The stage table of a blue-green rollout.
///
/// # Errors
///
/// [`PlanError::Invalid`] with every validation error (each naming its field path), and
/// [`PlanError::NoBlueGreen`] when the rollout does not use the blue-green strategy.
pub fn plan_blue_green(rollout: &Rollout) -> Result<BlueGreenPlan, PlanError> {
    rollout.validate()?;
    let Some(bg) = rollout.blue_green() else {
        return Err(PlanError::NoBlueGreen);
    };
    Ok(stages(rollout, bg))
}

fn stages(rollout: &Rollout, bg: &BlueGreenStrategy) -> BlueGreenPlan {
    let r = rollout.spec.replicas().max(0);
    let preview = bg.preview_replica_count.map_or(r, |p| p.clamp(0, r));
    let mut stages = Vec::new();
    let preview_text = match &bg.preview_service {
        Some(s) => format!("create the new ReplicaSet; {s} selects it"),
        None => "create the new ReplicaSet".to_string(),
    };
    stages.push(Stage {
        action: preview_text,
        new_pods: preview,
        old_pods: r,
        active: "old",
        waits_for: StageWait::PodsReady,
    });
    if let Some(a) = &bg.pre_promotion_analysis {
        stages.push(Stage {
            action: "pre-promotion analysis".to_string(),
            new_pods: preview,
            old_pods: r,
            active: "old",
            waits_for: StageWait::Analysis(templates(a)),
        });
    }
    let auto_seconds = i64::from(bg.auto_promotion_seconds.unwrap_or(0).max(0));
    if !bg.auto_promotion_enabled() {
        stages.push(Stage {
            action: "pause (BlueGreenPause)".to_string(),
            new_pods: preview,
            old_pods: r,
            active: "old",
            waits_for: StageWait::Promotion,
        });
    } else if auto_seconds > 0 {
        stages.push(Stage {
            action: "pause (BlueGreenPause), then promote automatically".to_string(),
            new_pods: preview,
            old_pods: r,
            active: "old",
            waits_for: StageWait::Seconds(auto_seconds),
        });
    }
    if preview < r {
        stages.push(Stage {
            action: "scale the new ReplicaSet to full size".to_string(),
            new_pods: r,
            old_pods: r,
            active: "old",
            waits_for: StageWait::PodsReady,
        });
    }
    stages.push(Stage {
        action: format!("switch {} to the new ReplicaSet", bg.active_service),
        new_pods: r,
        old_pods: r,
        active: "new",
        waits_for: StageWait::Nothing,
    });
    if let Some(a) = &bg.post_promotion_analysis {
        stages.push(Stage {
            action: "post-promotion analysis (failure switches back)".to_string(),
            new_pods: r,
            old_pods: r,
            active: "new",
            waits_for: StageWait::Analysis(templates(a)),
        });
    }
    stages.push(Stage {
        action: "keep the old ReplicaSet for a fast rollback".to_string(),
        new_pods: r,
        old_pods: r,
        active: "new",
        waits_for: StageWait::Seconds(i64::from(bg.scale_down_delay_seconds().max(0))),
    });
    stages.push(Stage {
        action: "promoted: scale the old ReplicaSet down".to_string(),
        new_pods: r,
        old_pods: 0,
        active: "new",
        waits_for: StageWait::Nothing,
    });
    BlueGreenPlan {
        name: rollout.metadata.name.clone().unwrap_or_default(),
        replicas: r,
        active_service: bg.active_service.clone(),
        preview_service: bg.preview_service.clone(),
        stages,
    }
}

impl fmt::Display for StageWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageWait::PodsReady => f.write_str("pods ready"),
            StageWait::Analysis(t) => write!(f, "AnalysisRun ({}) to succeed", t.join(", ")),
            StageWait::Promotion => f.write_str("promote"),
            StageWait::Seconds(s) => f.write_str(&super::human_seconds(*s)),
            StageWait::Nothing => f.write_str("-"),
        }
    }
}

impl fmt::Display for BlueGreenPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Rollout {}: blueGreen, {} pods",
            self.name, self.replicas
        )?;
        match &self.preview_service {
            Some(p) => writeln!(
                f,
                "  active service {}, preview service {p}",
                self.active_service
            )?,
            None => writeln!(
                f,
                "  active service {}, no preview service",
                self.active_service
            )?,
        }
        writeln!(f)?;
        let width = self
            .stages
            .iter()
            .map(|s| s.action.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(
            f,
            "STAGE  {:<width$}  NEW  OLD  ACTIVE  WAITS FOR",
            "ACTION"
        )?;
        for (i, s) in self.stages.iter().enumerate() {
            writeln!(
                f,
                "{:<5}  {:<width$}  {:>3}  {:>3}  {:<6}  {}",
                i + 1,
                s.action,
                s.new_pods,
                s.old_pods,
                s.active,
                s.waits_for
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(strategy: &str) -> Rollout {
        Rollout::from_yaml(&format!(
            "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 4
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: 'web:1'}}]}}
  strategy:
    blueGreen:
{strategy}"
        ))
        .unwrap()
    }

    #[test]
    fn full_blue_green_plan() {
        let ro = rollout(
            "      activeService: web-active
      previewService: web-preview
      previewReplicaCount: 1
      autoPromotionEnabled: false
      prePromotionAnalysis: {templates: [{templateName: smoke}]}
      postPromotionAnalysis: {templates: [{templateName: success-rate}]}
      scaleDownDelaySeconds: 60
",
        );
        let p = plan_blue_green(&ro).unwrap();
        let actions: Vec<_> = p.stages.iter().map(|s| s.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                "create the new ReplicaSet; web-preview selects it",
                "pre-promotion analysis",
                "pause (BlueGreenPause)",
                "scale the new ReplicaSet to full size",
                "switch web-active to the new ReplicaSet",
                "post-promotion analysis (failure switches back)",
                "keep the old ReplicaSet for a fast rollback",
                "promoted: scale the old ReplicaSet down",
            ]
        );
        assert_eq!(p.stages[0].new_pods, 1);
        assert_eq!(p.stages[2].waits_for, StageWait::Promotion);
        assert_eq!(p.stages[6].waits_for, StageWait::Seconds(60));
        let text = p.to_string();
        assert!(text.contains("STAGE"), "{text}");
    }

    #[test]
    fn minimal_blue_green_plan_and_errors() {
        let ro = rollout("      activeService: web-active\n      autoPromotionSeconds: 120\n");
        let p = plan_blue_green(&ro).unwrap();
        assert_eq!(p.stages.len(), 5);
        assert_eq!(p.stages[1].waits_for, StageWait::Seconds(120));
        assert_eq!(p.stages[3].waits_for, StageWait::Seconds(30));
        let bad = rollout("      activeService: ''\n");
        assert!(matches!(plan_blue_green(&bad), Err(PlanError::Invalid(_))));
    }
}
