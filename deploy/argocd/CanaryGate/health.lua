-- Healthy unless a rollout is under way (Progressing), held by a closed gate (Suspended) or
-- ended by a rollback (Degraded), as the gate sidecar last wrote it into status.
local HOLDS = {
  ["confirm-rollout"] = "the new revision waits, scaled to zero, for approval",
  ["confirm-traffic-increase"] = "the next traffic step waits for approval",
  ["confirm-promotion"] = "promotion waits for approval",
}
local status = obj.status
if type(status) ~= "table" or next(status) == nil then
  return {status = "Healthy",
    message = "No rollout reported yet: the gate sidecar writes status when Flagger reports an event"}
end
local view = rollout_view()
local canary = "the Canary"
if text(status.target) ~= "" then canary = "Canary " .. status.target end
local held = view.holding
local WAITS_ON = {Waiting = "confirm-rollout", WaitingPromotion = "confirm-promotion"}

if held == "" and WAITS_ON[view.phase] ~= nil then
  -- Flagger's phase says it waits, but our gate is open: Flagger goes on at its next check
  return {status = "Suspended",
    message = canary .. " is " .. view.phase .. " and gate " .. WAITS_ON[view.phase]
      .. " is open: Flagger goes on at its next check, unless another webhook of that type holds it"}
end
if held ~= "" then
  local why = HOLDS[held] or "it is closed"
  local verb = "promote"
  if (held == "confirm-traffic-increase" or held == "confirm-promotion") and has_live_change(held) then
    verb = "resume" -- closed by a live change, as pause does: resume undoes it
  end
  return {status = "Suspended",
    message = "Gate " .. held .. " holds the rollout of " .. canary .. ": " .. why
      .. ". Run the " .. verb .. " action, or: kubectl gate " .. verb .. " " .. text(obj.metadata.name)
      .. " -n " .. text(obj.metadata.namespace)}
end
if view.phase == "Failed" then
  local message = "The last rollout of " .. canary .. " failed and was rolled back"
  if type(status.failure) == "table" and text(status.failure.message) ~= "" then
    message = message .. ": " .. status.failure.message -- the sidecar's record of Flagger's rollback
    if text(status.failure.check) ~= "" then message = message .. " (" .. status.failure.check .. ")" end
  elseif type(status.lastEvent) == "table" and text(status.lastEvent.message) ~= "" then
    message = message .. ": " .. status.lastEvent.message
  end
  return {status = "Degraded", message = message}
end
if view.active then
  local message = "Rollout of " .. canary .. " in progress (" .. phase_text(view)
  if type(status.canaryWeight) == "number" then
    message = message .. ", canary weight " .. tostring(status.canaryWeight) .. "%"
  end
  return {status = "Progressing", message = message .. ")"}
end
return {status = "Healthy", message = canary .. ": " .. phase_text(view) .. ", no rollout in progress"}
