-- Argo CD health check for flotilla.dev/Microservice.
--
-- Without it Argo CD reports a Microservice Healthy as soon as it exists. Install it in
-- argocd-cm under the key `resource.customizations.health.flotilla.dev_Microservice`
-- (see the chart's README section "Argo CD"). It reads the status Flotilla writes
-- (kstatus style: Ready, Progressing, Degraded and DependenciesReady conditions, each
-- with observedGeneration):
--
--   Suspended    spec.paused: Flotilla changes nothing until it is unpaused; or a canary
--                step holds (status.rollout.phase Paused) until its pause ends or the
--                release is promoted
--   Progressing  no status yet, or a status of an older generation; Ready=False for a
--                reason that passes by itself (RollingOut, PodsNotReady, Creating,
--                DependencyNotFound, ConfigMapNotFound...)
--   Degraded     Degraded=True: a refused spec (InvalidSpec, ClassNotFound,
--                AmbiguousDefaultClass, PolicyViolation), a child Flotilla cannot apply
--                (ChildConflict, ApplyFailed), pods that will not start
--                (ImagePullBackOff, CrashLoopBackOff...), a stalled or rolled back rollout
--                (ProgressDeadlineExceeded, RolledBack)
--   Healthy      Ready=True for the current generation
local hs = {}

local function condition(conditions, type)
  for _, c in ipairs(conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.reason .. ": " .. c.message
  end
  return c.reason
end

if obj.spec ~= nil and obj.spec.paused == true then
  hs.status = "Suspended"
  hs.message = "spec.paused: Flotilla changes nothing until it is unpaused"
  return hs
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Flotilla to report a status"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for Flotilla to observe generation " .. tostring(generation)
  return hs
end

local conditions = obj.status.conditions
local degraded = condition(conditions, "Degraded")
local rollout = obj.status.rollout
if rollout ~= nil and rollout.phase == "Paused" and (degraded == nil or degraded.status ~= "True") then
  hs.status = "Suspended"
  local at = ""
  if rollout.step ~= nil and rollout.steps ~= nil then
    at = " at step " .. tostring(rollout.step) .. "/" .. tostring(rollout.steps)
  end
  if rollout.weight ~= nil then
    at = at .. " (" .. tostring(rollout.weight) .. "% of the pods)"
  end
  hs.message = "canary paused" .. at .. ": it goes on when the pause ends or the release is promoted"
  return hs
end
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(degraded)
  return hs
end

local ready = condition(conditions, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

-- Reasons that do not pass by themselves, should a status carry one without Degraded.
local stuck = {
  InvalidSpec = true,
  ClassNotFound = true,
  AmbiguousDefaultClass = true,
  PolicyViolation = true,
  ChildConflict = true,
  ApplyFailed = true,
  RolledBack = true,
  ProgressDeadlineExceeded = true,
}
if stuck[ready.reason] then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = describe(ready)
return hs
