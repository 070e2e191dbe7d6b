-- End the rollout by a rollback (kubectl gate abort NAME): open the rollback gate for this
-- rollout. Waiting, Flagger checks no rollback gate, so confirm-rollout is also opened for one
-- step: Flagger starts the rollout and rolls it back on its next check, with no traffic to it.
local view = rollout_view()
if not view.active then
  error("no rollout in progress (" .. phase_text(view) .. "): nothing to abort", 0)
end
if view.promoting then
  error("the Canary is " .. view.phase .. ": abort cannot stop a promotion under way", 0)
end
set_gate("rollback", "opened", "rollout", "abort")
if view.waiting then set_gate("confirm-rollout", "opened", "step", "abort") end
return obj
