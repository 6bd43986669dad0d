// Blobs: one row per stored content (sha256), shared by every tenant's file rows. The row is what an
// upload locks while it publishes bytes and inserts its file row, and what a removal locks while it
// checks that no file uses the bytes (lib/files.ts), so a delete never removes bytes an upload relies on.
import { DataTypes, QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.createTable('blobs', {
    sha256: { type: DataTypes.STRING(64), primaryKey: true },
    size: { type: DataTypes.BIGINT, allowNull: false },
    // Last time an upload of these bytes began: the orphan sweep leaves recently claimed blobs alone.
    claimed_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
    created_at: { type: DataTypes.DATE, allowNull: false, defaultValue: DataTypes.NOW },
  });
  await qi.addIndex('blobs', ['claimed_at']);
  // Every stored content so far.
  await qi.sequelize.query(
    `INSERT INTO blobs (sha256, size, claimed_at, created_at)
     SELECT sha256, max(size), max(created_at), min(created_at) FROM files GROUP BY sha256`,
  );
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.dropTable('blobs');
}
