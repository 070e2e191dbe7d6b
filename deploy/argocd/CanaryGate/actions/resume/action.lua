-- Undo pause: remove the live closures of confirm-traffic-increase and confirm-promotion, so
-- both gates are back to their declared state. A gate declared closed still holds: use promote.
local view = rollout_view()
local removed = 0
for _, gate in ipairs({"confirm-traffic-increase", "confirm-promotion"}) do
  if has_live_change(gate) and is_closed(view, gate) then
    obj.metadata.annotations[PREFIX .. gate] = nil
    removed = removed + 1
  end
end
if removed == 0 then
  error("neither confirm-traffic-increase nor confirm-promotion is closed by a live change: nothing to resume", 0)
end
return obj
