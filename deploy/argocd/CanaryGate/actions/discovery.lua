local view = rollout_view()
local any_closed = false
for i = 1, #GATES - 1 do -- the progress gates: every gate but rollback
  if is_closed(view, GATES[i]) then any_closed = true end
end
local holdable = view.active and not view.promoting
local function live_closure(gate) return has_live_change(gate) and is_closed(view, gate) end

local actions = {}
actions["promote"] = {disabled = gate_to_promote(view) == nil, iconClass = "fa-solid fa-fw fa-forward",
  displayName = "Promote one step"}
actions["promote-full"] = {disabled = not (view.active and any_closed),
  iconClass = "fa-solid fa-fw fa-forward-fast", displayName = "Promote full"}
actions["pause"] = {disabled = not holdable
    or (is_closed(view, "confirm-traffic-increase") and is_closed(view, "confirm-promotion")),
  iconClass = "fa-solid fa-fw fa-pause", displayName = "Pause"}
actions["resume"] = {disabled = not (live_closure("confirm-traffic-increase") or live_closure("confirm-promotion")),
  iconClass = "fa-solid fa-fw fa-play", displayName = "Resume"}
actions["abort"] = {disabled = not holdable, iconClass = "fa-solid fa-fw fa-xmark", displayName = "Abort"}
return actions
