// Names of the tenant's vehicles, devices and staff, loaded once per session: what turns
// the ids of positions and alerts into plates and people.

import { ApiError, get } from "./api.js";

function forbiddenIsEmpty(error) {
  if (error instanceof ApiError && error.status === 403) return []; // not this role's to see
  throw error;
}

export class Directory {
  constructor() {
    this.vehicles = new Map();
    this.devices = new Map();
    this.people = new Map();
    this.staffAll = [];
  }

  async load() {
    const [vehicles, staff, devices] = await Promise.all([
      get("/api/v1/vehicles"),
      get("/api/v1/staff").catch(forbiddenIsEmpty),
      get("/api/v1/devices").catch(forbiddenIsEmpty),
    ]);
    for (const vehicle of vehicles) {
      this.vehicles.set(vehicle.id, vehicle);
      for (const device of vehicle.devices || []) {
        this.devices.set(device.id, { ...device, vehicle_id: vehicle.id });
      }
    }
    for (const device of devices) this.devices.set(device.id, device);
    this.staffAll = [...staff].sort((a, b) => a.full_name.localeCompare(b.full_name, "vi"));
    for (const person of staff) this.people.set(person.id, person);
  }

  vehicle(id) {
    return id == null ? null : this.vehicles.get(id) || null;
  }

  device(id) {
    return id == null ? null : this.devices.get(id) || null;
  }

  staff(id) {
    return id == null ? null : this.people.get(id) || null;
  }

  /** Everyone, by name: the choice when assigning an alert. */
  staffList() {
    return this.staffAll;
  }
}
