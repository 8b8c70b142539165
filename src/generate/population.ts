/**
 * A deterministic synthetic population in FHIR R4, shaped like Synthea output: shared
 * Organizations, Locations and Practitioners, then per patient a Patient with allergies,
 * chronic conditions and a history of encounters, each with vital signs, sometimes labs with a
 * DiagnosticReport, medications, procedures, immunizations and acute conditions; finally a Group
 * of all patients. About 240 resources per patient; every reference points at a generated resource.
 */
import type { FhirResourceJson } from '../fhir/resource-validation';
import { SeededRandom } from './random';

export interface PopulationOptions {
  patients: number;
  seed?: number;
}

const LOINC = 'http://loinc.org';
const SNOMED = 'http://snomed.info/sct';
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
const CVX = 'http://hl7.org/fhir/sid/cvx';
const UCUM = 'http://unitsofmeasure.org';
const ANCHOR = Date.parse('2025-06-01T00:00:00Z');
const DAY = 86_400_000;

const code = (system: string, value: string, display: string) => ({ coding: [{ system, code: value, display }], text: display });
const ref = (type: string, id: string) => ({ reference: `${type}/${id}` });

const GIVEN = ['Ava', 'Liam', 'Mia', 'Noah', 'Zoe', 'Omar', 'Ines', 'Kai', 'Lena', 'Ravi', 'Sofia', 'Tom', 'Yara', 'Eli', 'Nora', 'Ivan'];
const FAMILY = ['Nguyen', 'Smith', 'Garcia', 'Okafor', 'Kowalski', 'Haddad', 'Tanaka', 'Silva', 'Murphy', 'Rossi', 'Jensen', 'Patel'];
const CITIES = [['Boston', '02110'], ['Worcester', '01608'], ['Springfield', '01103'], ['Lowell', '01852'], ['Salem', '01970']];
const VITALS = [
  ['8302-2', 'Body Height', 'cm', 170, 10],
  ['29463-7', 'Body Weight', 'kg', 78, 14],
  ['39156-5', 'Body Mass Index', 'kg/m2', 26, 4],
  ['8867-4', 'Heart rate', '/min', 74, 9],
  ['9279-1', 'Respiratory rate', '/min', 15, 2],
  ['8310-5', 'Body temperature', 'Cel', 36.9, 0.3],
] as const;
const LABS = [
  ['2339-0', 'Glucose [Mass/volume] in Blood', 'mg/dL', 95, 15],
  ['2093-3', 'Cholesterol [Mass/volume] in Serum or Plasma', 'mg/dL', 190, 30],
  ['4548-4', 'Hemoglobin A1c/Hemoglobin.total in Blood', '%', 5.6, 0.6],
] as const;
const CHRONIC = [['44054006', 'Diabetes mellitus type 2'], ['38341003', 'Hypertensive disorder'], ['55822004', 'Hyperlipidemia'], ['162864005', 'Body mass index 30+ - obesity']];
const ACUTE = [['195662009', 'Acute viral pharyngitis'], ['10509002', 'Acute bronchitis'], ['444814009', 'Viral sinusitis'], ['43878008', 'Streptococcal sore throat']];
const MEDICATIONS = [['314076', 'lisinopril 10 MG Oral Tablet'], ['860975', 'metformin 500 MG Extended Release Oral Tablet'], ['310965', 'Ibuprofen 200 MG Oral Tablet'], ['308182', 'Amoxicillin 250 MG Oral Capsule'], ['197361', 'Amlodipine 5 MG Oral Tablet']];
const PROCEDURES = [['430193006', 'Medication Reconciliation (procedure)'], ['710824005', 'Assessment of health and social care needs'], ['171207006', 'Depression screening'], ['76601001', 'Intramuscular injection']];
const VACCINES = [['140', 'Influenza, seasonal, injectable, preservative free'], ['115', 'Tdap'], ['133', 'Pneumococcal conjugate PCV 13'], ['08', 'Hep B, adolescent or pediatric']];
const ALLERGIES = [['419474003', 'Allergy to mould'], ['91934008', 'Allergy to nut'], ['300916003', 'Latex allergy']];
const ENCOUNTER_TYPES = [['185349003', 'Encounter for check up (procedure)', 'AMB'], ['185345009', 'Encounter for symptom', 'AMB'], ['50849002', 'Emergency room admission', 'EMER']];

export function* generatePopulation(options: PopulationOptions): Generator<FhirResourceJson> {
  const rng = new SeededRandom(options.seed ?? 1);
  const organizations = Math.max(2, Math.ceil(options.patients / 50));
  const practitionersPerOrganization = 5;

  const orgIds: string[] = [];
  const locationIds: string[] = [];
  const practitionerIds: string[][] = [];
  for (let o = 0; o < organizations; o++) {
    const orgId = rng.uuid();
    const [city, zip] = rng.pick(CITIES);
    orgIds.push(orgId);
    yield {
      resourceType: 'Organization',
      id: orgId,
      identifier: [{ system: 'https://bulkflow.example/organizations', value: orgId }],
      active: true,
      type: [code('http://terminology.hl7.org/CodeSystem/organization-type', 'prov', 'Healthcare Provider')],
      name: `${city} Health Center ${o + 1}`,
      address: [{ line: [`${rng.int(1, 999)} Main Street`], city, state: 'MA', postalCode: zip, country: 'US' }],
    };
    const locationId = rng.uuid();
    locationIds.push(locationId);
    yield {
      resourceType: 'Location',
      id: locationId,
      status: 'active',
      name: `${city} Health Center ${o + 1}, main site`,
      address: { city, state: 'MA', postalCode: zip, country: 'US' },
      managingOrganization: ref('Organization', orgId),
    };
    const staff: string[] = [];
    for (let p = 0; p < practitionersPerOrganization; p++) {
      const id = rng.uuid();
      staff.push(id);
      yield {
        resourceType: 'Practitioner',
        id,
        identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: String(9_999_000_000 + o * 100 + p) }],
        active: true,
        name: [{ family: rng.pick(FAMILY), given: [rng.pick(GIVEN)], prefix: ['Dr.'] }],
        gender: rng.pick(['female', 'male']),
      };
    }
    practitionerIds.push(staff);
  }

  const patientIds: string[] = [];
  for (let n = 0; n < options.patients; n++) {
    const patientId = rng.uuid();
    patientIds.push(patientId);
    const o = rng.int(0, organizations - 1);
    yield* patientRecord(rng, patientId, orgIds[o], locationIds[o], practitionerIds[o]);
  }

  yield {
    resourceType: 'Group',
    id: `population-${options.seed ?? 1}`,
    identifier: [{ system: 'https://bulkflow.example/groups', value: `population-${options.seed ?? 1}` }],
    active: true,
    type: 'person',
    actual: true,
    name: `Generated population (seed ${options.seed ?? 1})`,
    quantity: patientIds.length,
    member: patientIds.map((id) => ({ entity: ref('Patient', id) })),
  };
}

/** What one patient's resources share. */
interface PatientContext {
  rng: SeededRandom;
  subject: { reference: string };
  orgId: string;
  locationId: string;
  staff: string[];
}

/** One patient and their record: allergies, chronic conditions, then encounters with what happened in each. */
function* patientRecord(rng: SeededRandom, patientId: string, orgId: string, locationId: string, staff: string[]): Generator<FhirResourceJson> {
  const patient: PatientContext = { rng, subject: ref('Patient', patientId), orgId, locationId, staff };
  const gender = rng.pick(['female', 'male']);
  const birth = ANCHOR - rng.int(1, 90) * 365 * DAY - rng.int(0, 364) * DAY;
  const [city, zip] = rng.pick(CITIES);
  yield {
    resourceType: 'Patient',
    id: patientId,
    identifier: [{ system: 'https://bulkflow.example/mrn', value: patientId.slice(0, 8).toUpperCase() }],
    active: true,
    name: [{ use: 'official', family: rng.pick(FAMILY), given: [rng.pick(GIVEN)] }],
    telecom: [{ system: 'phone', value: `555-${rng.int(100, 999)}-${rng.int(1000, 9999)}`, use: 'home' }],
    gender,
    birthDate: new Date(birth).toISOString().slice(0, 10),
    address: [{ line: [`${rng.int(1, 999)} Elm Street`], city, state: 'MA', postalCode: zip, country: 'US' }],
    generalPractitioner: [ref('Practitioner', staff[0])],
    managingOrganization: ref('Organization', orgId),
  };
  yield* allergies(patient, birth);
  yield* chronicConditions(patient);
  for (let e = rng.int(12, 28); e > 0; e--) yield* encounterRecord(patient);
}

function* allergies({ rng, subject }: PatientContext, birth: number): Generator<FhirResourceJson> {
  for (let a = rng.int(0, 2); a > 0; a--) {
    const [snomed, display] = rng.pick(ALLERGIES);
    yield {
      resourceType: 'AllergyIntolerance',
      id: rng.uuid(),
      clinicalStatus: code('http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', 'active', 'Active'),
      verificationStatus: code('http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', 'confirmed', 'Confirmed'),
      type: 'allergy',
      category: ['environment'],
      criticality: 'low',
      code: code(SNOMED, snomed, display),
      patient: subject,
      recordedDate: new Date(birth + rng.int(1, 20) * 365 * DAY).toISOString(),
    };
  }
}

function* chronicConditions({ rng, subject }: PatientContext): Generator<FhirResourceJson> {
  const chronic = new Set<number>();
  for (let c = rng.int(0, 3); c > 0; c--) chronic.add(rng.int(0, CHRONIC.length - 1));
  for (const index of chronic) {
    const [snomed, display] = CHRONIC[index];
    yield {
      resourceType: 'Condition',
      id: rng.uuid(),
      clinicalStatus: code('http://terminology.hl7.org/CodeSystem/condition-clinical', 'active', 'Active'),
      verificationStatus: code('http://terminology.hl7.org/CodeSystem/condition-ver-status', 'confirmed', 'Confirmed'),
      category: [code('http://terminology.hl7.org/CodeSystem/condition-category', 'problem-list-item', 'Problem List Item')],
      code: code(SNOMED, snomed, display),
      subject,
      onsetDateTime: new Date(ANCHOR - rng.int(400, 4000) * DAY).toISOString(),
      recordedDate: new Date(ANCHOR - rng.int(1, 399) * DAY).toISOString(),
    };
  }
}

/** One visit's resources, each drawn in a fixed order (the seed's output depends on it). */
interface Visit extends PatientContext {
  start: number;
  startIso: string;
  endIso: string;
  encounter: { reference: string };
  practitioner: { reference: string };
}

/** An encounter, its vital signs, and what else happened there: labs, a diagnosis, prescriptions, procedures, a vaccination. */
function* encounterRecord(patient: PatientContext): Generator<FhirResourceJson> {
  const { rng, subject, orgId, locationId, staff } = patient;
  const start = ANCHOR - rng.int(1, 3650) * DAY + rng.int(8, 17) * 3_600_000;
  const end = start + rng.int(15, 90) * 60_000;
  const encounterId = rng.uuid();
  const visit: Visit = { ...patient, start, startIso: new Date(start).toISOString(), endIso: new Date(end).toISOString(), encounter: ref('Encounter', encounterId), practitioner: ref('Practitioner', rng.pick(staff)) };
  const [typeCode, typeDisplay, klass] = rng.pick(ENCOUNTER_TYPES);
  yield {
    resourceType: 'Encounter',
    id: encounterId,
    status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: klass },
    type: [code(SNOMED, typeCode, typeDisplay)],
    subject,
    participant: [{ individual: visit.practitioner }],
    period: { start: visit.startIso, end: visit.endIso },
    location: [{ location: ref('Location', locationId) }],
    serviceProvider: ref('Organization', orgId),
  };
  yield* vitalSigns(visit);
  if (rng.chance(0.33)) yield* labPanel(visit);
  if (rng.chance(0.25)) yield acuteCondition(visit);
  for (let m = rng.int(0, 2); m > 0; m--) yield medicationRequest(visit);
  for (let p = rng.int(0, 2); p > 0; p--) yield procedure(visit);
  if (rng.chance(0.3)) yield immunization(visit);
}

function* vitalSigns({ rng, subject, encounter, startIso }: Visit): Generator<FhirResourceJson> {
  const category = [code('http://terminology.hl7.org/CodeSystem/observation-category', 'vital-signs', 'vital signs')];
  for (const [loinc, display, unit, mean, sd] of VITALS) yield observation(rng, loinc, display, unit, rng.normal(mean, sd), subject, encounter, startIso, category);
  yield {
    resourceType: 'Observation',
    id: rng.uuid(),
    status: 'final',
    category,
    code: code(LOINC, '85354-9', 'Blood pressure panel with all children optional'),
    subject,
    encounter,
    effectiveDateTime: startIso,
    issued: startIso,
    component: [
      { code: code(LOINC, '8480-6', 'Systolic blood pressure'), valueQuantity: quantity(rng.normal(122, 12), 'mm[Hg]') },
      { code: code(LOINC, '8462-4', 'Diastolic blood pressure'), valueQuantity: quantity(rng.normal(79, 8), 'mm[Hg]') },
    ],
  };
}

function* labPanel({ rng, subject, encounter, endIso, practitioner }: Visit): Generator<FhirResourceJson> {
  const laboratory = [code('http://terminology.hl7.org/CodeSystem/observation-category', 'laboratory', 'laboratory')];
  const results: Array<{ reference: string }> = [];
  for (const [loinc, display, unit, mean, sd] of LABS) {
    const lab = observation(rng, loinc, display, unit, rng.normal(mean, sd), subject, encounter, endIso, laboratory);
    results.push(ref('Observation', lab.id!));
    yield lab;
  }
  yield {
    resourceType: 'DiagnosticReport',
    id: rng.uuid(),
    status: 'final',
    category: [code('http://terminology.hl7.org/CodeSystem/v2-0074', 'LAB', 'Laboratory')],
    code: code(LOINC, '24323-8', 'Comprehensive metabolic 2000 panel - Serum or Plasma'),
    subject,
    encounter,
    effectiveDateTime: endIso,
    issued: endIso,
    performer: [practitioner],
    result: results,
  };
}

function acuteCondition({ rng, subject, encounter, start, startIso }: Visit): FhirResourceJson {
  const [snomed, display] = rng.pick(ACUTE);
  return {
    resourceType: 'Condition',
    id: rng.uuid(),
    clinicalStatus: code('http://terminology.hl7.org/CodeSystem/condition-clinical', 'resolved', 'Resolved'),
    verificationStatus: code('http://terminology.hl7.org/CodeSystem/condition-ver-status', 'confirmed', 'Confirmed'),
    category: [code('http://terminology.hl7.org/CodeSystem/condition-category', 'encounter-diagnosis', 'Encounter Diagnosis')],
    code: code(SNOMED, snomed, display),
    subject,
    encounter,
    onsetDateTime: startIso,
    abatementDateTime: new Date(start + rng.int(5, 20) * DAY).toISOString(),
    recordedDate: startIso,
  };
}

function medicationRequest({ rng, subject, encounter, startIso, practitioner }: Visit): FhirResourceJson {
  const [rxnorm, display] = rng.pick(MEDICATIONS);
  return {
    resourceType: 'MedicationRequest',
    id: rng.uuid(),
    status: rng.pick(['active', 'completed', 'stopped']),
    intent: 'order',
    medicationCodeableConcept: code(RXNORM, rxnorm, display),
    subject,
    encounter,
    authoredOn: startIso,
    requester: practitioner,
    dosageInstruction: [{ sequence: 1, timing: { repeat: { frequency: 1, period: 1, periodUnit: 'd' } }, asNeededBoolean: false }],
  };
}

function procedure({ rng, subject, encounter, startIso, endIso, practitioner, locationId }: Visit): FhirResourceJson {
  const [snomed, display] = rng.pick(PROCEDURES);
  return {
    resourceType: 'Procedure',
    id: rng.uuid(),
    status: 'completed',
    code: code(SNOMED, snomed, display),
    subject,
    encounter,
    performedPeriod: { start: startIso, end: endIso },
    performer: [{ actor: practitioner }],
    location: ref('Location', locationId),
  };
}

function immunization({ rng, subject, encounter, startIso, practitioner, locationId }: Visit): FhirResourceJson {
  const [cvx, display] = rng.pick(VACCINES);
  return {
    resourceType: 'Immunization',
    id: rng.uuid(),
    status: 'completed',
    vaccineCode: code(CVX, cvx, display),
    patient: subject,
    encounter,
    occurrenceDateTime: startIso,
    primarySource: true,
    location: ref('Location', locationId),
    performer: [{ actor: practitioner }],
  };
}

function quantity(value: number, unit: string) {
  return { value: Math.round(value * 100) / 100, unit, system: UCUM, code: unit };
}

function observation(
  rng: SeededRandom,
  loinc: string,
  display: string,
  unit: string,
  value: number,
  subject: { reference: string },
  encounter: { reference: string },
  when: string,
  category: unknown[],
): FhirResourceJson {
  return {
    resourceType: 'Observation',
    id: rng.uuid(),
    status: 'final',
    category,
    code: code(LOINC, loinc, display),
    subject,
    encounter,
    effectiveDateTime: when,
    issued: when,
    valueQuantity: quantity(value, unit),
  };
}
