//! The worker's events turned into the state the Training and Activations tabs draw, and into
//! [`Outcome`]s for the rest of the app.

use super::*;

impl ModelJobs {
    /// Handles what the worker sent; returns what the rest of the app must do.
    pub fn poll(&mut self, ctx: &eframe::egui::Context, source: Option<&Source>) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let mut events = Vec::new();
        if let Some((_, worker)) = &self.worker {
            while let Some(event) = worker.try_recv() {
                events.push(event);
            }
        }
        for event in events {
            self.handle(ctx, event, source, &mut outcomes);
        }
        outcomes
    }

    fn handle(
        &mut self,
        ctx: &eframe::egui::Context,
        event: Event,
        source: Option<&Source>,
        outcomes: &mut Vec<Outcome>,
    ) {
        match event {
            Event::Training(event) => self.training_event(event),
            Event::TrainingDone(summary) => {
                self.job = None;
                let Some(run) = &mut self.run else { return };
                run.state = if summary.stopped {
                    RunState::Stopped
                } else {
                    RunState::Finished
                };
                let best = run.options.out.join("best");
                if best.is_dir() {
                    self.checkpoint = Some(best);
                }
                self.runs = list_runs(&run.options.data);
                let message = format!(
                    "training {}: best validation Dice {:.3} after {} epoch(s)",
                    if summary.stopped { "stopped" } else { "finished" },
                    summary.best_val_dice,
                    summary.epochs_completed
                );
                outcomes.push(Outcome::Notice(Ok(message)));
                let run_task = run.options.data.clone();
                if !summary.stopped
                    && self.checkpoint.is_some()
                    && let Some(source) = source.filter(|s| task_folder(s).ok() == Some(run_task))
                    && let Err(message) = self.predict(ctx, source)
                {
                    outcomes.push(Outcome::Notice(Err(message)));
                }
            }
            Event::CasePredicted {
                id,
                output,
                before,
                after,
                scoring_problem,
                done,
                total,
                uncertainty,
            } => {
                self.job = Some(Job::Predicting { done, total });
                // Trained on: the current model is the on-screen run's best checkpoint, and that
                // run took this case's corrected label.
                let trained_on = self.run.as_ref().is_some_and(|run| {
                    run.options.label_overrides.contains_key(&id)
                        && self.checkpoint.as_deref() == Some(run.options.out.join("best").as_path())
                });
                self.outcomes.push(CaseOutcome {
                    id: id.clone(),
                    before: before.as_ref().and_then(mean_dice),
                    after: after.as_ref().and_then(mean_dice),
                    error: scoring_problem,
                    trained_on,
                });
                outcomes.push(Outcome::Predicted {
                    id,
                    path: output,
                    uncertainty,
                });
            }
            Event::PredictionsDone { written, stopped } => {
                self.job = None;
                let message = format!(
                    "{written} prediction(s) written to {APP_FOLDER}/{PREDICTION_FOLDER}/{}",
                    if stopped { " (stopped)" } else { "" }
                );
                outcomes.push(Outcome::Notice(Ok(message)));
            }
            Event::Activations { input, maps } => {
                self.job = None;
                self.activations.received(&input, maps);
                // Model B's capture follows model A's.
                if let Some((checkpoint, scan, attention, reduction)) = self.activations.next_capture()
                    && let Err(message) = self.capture(ctx, checkpoint, scan, attention, reduction)
                {
                    outcomes.push(Outcome::Notice(Err(message)));
                }
            }
            Event::Predicted { .. } => self.job = None,
            Event::Failed(message) => match self.job {
                // A case that failed is listed with its message; the worker still ends the job
                // with PredictionsDone. A message naming no case failed the whole job (e.g. the
                // checkpoint could not be read): the job is over, even if nothing else arrives.
                Some(Job::Predicting { .. }) => {
                    let case = message
                        .strip_prefix("case ")
                        .and_then(|rest| rest.split_once(": "));
                    let (id, error) = match case {
                        Some((id, error)) => (id.to_string(), error.to_string()),
                        None => {
                            self.job = None;
                            (String::new(), message)
                        }
                    };
                    self.outcomes.push(CaseOutcome {
                        id,
                        before: None,
                        after: None,
                        error: Some(error),
                        trained_on: false,
                    });
                }
                Some(Job::Training) => {
                    self.job = None;
                    if let Some(run) = &mut self.run {
                        run.state = RunState::Failed(message.clone());
                    }
                    outcomes.push(Outcome::Notice(Err(format!("training failed: {message}"))));
                }
                Some(Job::Capturing) => {
                    // Shown once, in the Activations tab beside the Capture button.
                    self.job = None;
                    self.activations
                        .failed(format!("activation capture failed: {message}"));
                }
                None => outcomes.push(Outcome::Notice(Err(message))),
            },
        }
    }

    fn training_event(&mut self, event: TrainEvent) {
        let Some(run) = &mut self.run else { return };
        match event {
            TrainEvent::Started {
                train_cases,
                val_cases,
                first_epoch,
                epochs,
                llm_weights,
            } => {
                run.epochs = (first_epoch, epochs);
                run.cases = (train_cases, val_cases);
                run.llm_weights = llm_weights;
            }
            TrainEvent::Progress {
                epoch,
                step,
                steps,
                loss,
                eta_secs,
            } => {
                run.position = Some((epoch, step, steps));
                run.eta_secs = Some(eta_secs);
                let global = ((epoch - 1) * steps + step) as f64;
                run.step_losses.push([global / steps.max(1) as f64, loss]);
            }
            TrainEvent::Epoch {
                epoch,
                train_loss,
                val_dice,
                val_dice_per_class,
                ..
            } => run.history.push(EpochPoint {
                epoch,
                train_loss,
                val_dice,
                val_dice_per_class,
            }),
            TrainEvent::RolledBack { to_epoch, .. } => {
                // The curves go back with the model: epochs after the restored one are redone.
                run.history.retain(|p| p.epoch <= to_epoch);
                run.rollbacks.extend(event.rollback_line());
            }
            _ => {}
        }
    }
}
