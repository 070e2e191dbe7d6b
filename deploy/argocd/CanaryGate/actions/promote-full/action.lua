-- Open every closed progress gate for the rest of this rollout (kubectl gate promote NAME --full).
local view = rollout_view()
if not view.active then
  error("no rollout in progress (" .. phase_text(view) .. "): nothing to promote", 0)
end
local opened = 0
for i = 1, #GATES - 1 do -- the progress gates: every gate but rollback
  if is_closed(view, GATES[i]) then
    set_gate(GATES[i], "opened", "rollout", "promote-full")
    opened = opened + 1
  end
end
if opened == 0 then
  error("no progress gate of this CanaryGate is closed: nothing to promote", 0)
end
return obj
