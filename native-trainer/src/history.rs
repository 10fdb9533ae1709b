//! What a training run has done so far: the loss of every optimisation step and the validation metrics
//! of every finished epoch. Saved in each checkpoint (so `--resume` continues the curve), written as
//! `training_loss.tsv`, and drawn as `training_curve.svg`.

/// The training loss of one optimisation step (1-based).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepLoss {
    pub step: usize,
    pub loss: f64,
}

/// How the model stood at the end of an epoch.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: usize,
    /// The global step the epoch ended at.
    pub step: usize,
    /// Mean training loss over the epoch's rows.
    pub train_loss: f64,
    /// Mean cross-entropy of the validation rows (temperature 1).
    pub validation_loss: f64,
    pub validation_accuracy: f64,
    pub validation_f1: f64,
    pub validation_mcc: f64,
    /// With `--ema-decay` the metrics above are the weight average's; this is the accuracy of the
    /// epoch's last weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_weights_accuracy: Option<f64>,
    pub samples_per_s: f64,
}

/// Loss per step and metrics per epoch, in order.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainingHistory {
    pub steps: Vec<StepLoss>,
    pub epochs: Vec<EpochRecord>,
}

impl TrainingHistory {
    /// Whether anything was trained (a plain `export` has no history).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The global step reached so far.
    pub fn global_step(&self) -> usize {
        self.steps.last().map_or(0, |s| s.step)
    }

    /// `training_loss.tsv`: a `step<TAB>loss` header, then one row per step.
    pub fn loss_tsv(&self) -> String {
        let rows: String = self.steps.iter().map(|s| format!("{}\t{:.6}\n", s.step, s.loss)).collect();
        format!("step\tloss\n{rows}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_tsv_has_a_header_and_one_row_per_step() {
        let history = TrainingHistory {
            steps: vec![StepLoss { step: 1, loss: 0.75 }, StepLoss { step: 2, loss: 0.5 }],
            epochs: Vec::new(),
        };
        assert_eq!(history.loss_tsv(), "step\tloss\n1\t0.750000\n2\t0.500000\n");
        assert_eq!(history.global_step(), 2);
        assert!(TrainingHistory::default().is_empty());
    }
}
