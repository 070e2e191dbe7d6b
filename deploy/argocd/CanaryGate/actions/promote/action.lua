-- Open the gate holding the rollout for one step (kubectl gate promote NAME).
local view = rollout_view()
local gate = gate_to_promote(view)
if gate == nil then
  error("no gate holds the rollout of this CanaryGate (" .. phase_text(view) .. "): nothing to promote", 0)
end
set_gate(gate, "opened", "step", "promote")
return obj
