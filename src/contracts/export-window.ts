/**
 * What an export reads and where it writes, in the shapes every layer passes on whole: the
 * kick-off route builds the requested window, planning fixes its snapshot time, and each
 * partition activity reads exactly that window. A leaf: imports nothing of bulkflow.
 */

/** A position in (last_updated, id) order; ranges start after it. */
export interface Cursor {
  lastUpdated: string;
  id: string;
}

/** Which patients' compartments a Patient- or Group-level export covers. */
export interface CompartmentFilter {
  /** Only the active members of this Group (at transactionTime). */
  groupId?: string;
  /** Only these patients (the `patient` kick-off parameter), listed inline (schedules, earlier releases). */
  patientIds?: string[];
  /** Only these patients, kept once in the store's `export_patient_lists` under `id` (kick-offs): histories stay small. */
  patientList?: { id: string; count: number };
}

/** One tenant's store at one snapshot, optionally narrowed to changes and to patients' compartments. */
export interface ExportWindow {
  tenant: string;
  /** The snapshot: every version current at this instant (fixed when the export is planned). */
  transactionTime: string;
  /** Only versions changed after this instant (`_since`). */
  since?: string;
  /** Only versions changed at or before this instant (`_until`). */
  until?: string;
  /** Present for Patient and Group exports: only resources in a selected patient's compartment. */
  compartment?: CompartmentFilter;
}

/** The window as a kick-off asks for it: its snapshot time is fixed when planning starts. */
export type RequestedWindow = Omit<ExportWindow, 'transactionTime'>;

/** The window at the snapshot planning fixed. */
export const atSnapshot = (window: RequestedWindow, transactionTime: string): ExportWindow => ({ ...window, transactionTime });

/** When a part file is full. */
export interface PartLimits {
  maxPartResources: number;
  maxPartBytes: number;
}

/** Which export a file belongs to; scheduled runs live under their schedule's output prefix. */
export interface ExportLocation {
  tenant: string;
  exportId: string;
  outputPrefix?: string;
}
