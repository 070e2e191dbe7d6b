-- Hold the rollout before its next traffic step and before promotion, for this rollout
-- (kubectl gate close confirm-traffic-increase NAME; kubectl gate close confirm-promotion NAME).
local view = rollout_view()
if not view.active then
  error("no rollout in progress (" .. phase_text(view) .. "): nothing to pause", 0)
end
if view.promoting then
  error("the Canary is " .. view.phase .. ": a promotion under way cannot be paused", 0)
end
set_gate("confirm-traffic-increase", "closed", "rollout", "pause")
set_gate("confirm-promotion", "closed", "rollout", "pause")
return obj
