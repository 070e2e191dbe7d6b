-- Canary Gate: what every action reads off a CanaryGate, and how it writes a live change.
-- Argo CD runs actions without Lua's string library (only base, table and os.time/os.date):
-- text is compared and joined here, never searched or split.
local GATES = {"confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
  "confirm-promotion", "post-rollout", "rollback"}
local PREFIX = "gate.piggysec.com/"
local ACTIVE = {Waiting = true, Progressing = true, WaitingPromotion = true, Promoting = true,
  Finalising = true}

local KNOWN = {}
for _, gate in ipairs(GATES) do KNOWN[gate] = true end

local function text(value)
  if type(value) == "string" then return value end
  return ""
end

-- status.closedGates lists gates in the order of GATES, joined by ",", as the gate sidecar writes
-- it. With no string library it is found among every such list: a set, or nil when it is none.
local function closed_gates(value)
  if type(value) ~= "string" then return nil end
  local lists = {}
  local function add(i, list, set)
    if i > #GATES then
      lists[list] = set
      return
    end
    add(i + 1, list, set)
    local with = {[GATES[i]] = true}
    for gate in pairs(set) do with[gate] = true end
    if list == "" then add(i + 1, GATES[i], with) else add(i + 1, list .. "," .. GATES[i], with) end
  end
  add(1, "", {})
  return lists[value]
end

-- The rollout as the sidecar last wrote it into status. A holding gate says a rollout is under
-- way even when the status came with an event carrying the phase before it (Flagger's "waiting
-- for approval" event does): confirm-rollout holds only a Waiting Canary.
local function rollout_view()
  local status = obj.status
  if type(status) ~= "table" then status = {} end
  local view = {phase = text(status.phase), holding = "", closed = closed_gates(status.closedGates)}
  if KNOWN[status.holding] then view.holding = status.holding end
  view.waiting = view.phase == "Waiting" or view.holding == "confirm-rollout"
  view.active = ACTIVE[view.phase] == true or view.holding ~= ""
  view.promoting = view.holding == "" and (view.phase == "Promoting" or view.phase == "Finalising")
  return view
end

local function is_closed(view, gate)
  return view.closed ~= nil and view.closed[gate] == true
end

local function has_live_change(gate)
  local annotations = obj.metadata.annotations
  return type(annotations) == "table" and annotations[PREFIX .. gate] ~= nil
end

-- The gate one promote opens, as kubectl gate promote picks it (canarygate.verbs.promote): the
-- holding gate; an open gate in Waiting or WaitingPromotion holds nothing, so nothing is promoted.
local function gate_to_promote(view)
  if not view.active then return nil end
  if view.holding ~= "" then return view.holding end
  if view.phase == "Progressing" and is_closed(view, "confirm-traffic-increase") then
    return "confirm-traffic-increase"
  end
  return nil
end

-- A live change, byte for byte as canarygate.annotations encodes it (the sidecar's conditional
-- writes compare encodings). Argo CD does not tell an action who runs it: "by" is "argocd", and the
-- user is in Argo CD's audit (the ResourceActionRan event). The rollout mark is idle with no time:
-- the CanaryGate carries no Canary condition to copy, so the sidecar binds the change to the
-- rollout under way, and ends it once the Canary shows an end.
local AT = os.date("!%Y-%m-%dT%H:%M:%SZ")

local function set_gate(gate, state, scope, action)
  if type(obj.metadata.annotations) ~= "table" then obj.metadata.annotations = {} end
  local value = '{"state":"' .. state .. '","scope":"' .. scope .. '","by":"argocd","at":"' .. AT
    .. '","reason":"Argo CD action ' .. action .. '"'
  if scope ~= "sticky" then value = value .. ',"rollout":{"active":false,"since":""}' end
  obj.metadata.annotations[PREFIX .. gate] = value .. "}"
end

local function phase_text(view)
  if view.phase == "" then return "no phase reported" end
  return "phase " .. view.phase
end
