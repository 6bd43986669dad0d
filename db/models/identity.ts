// Tenants, users, roles and API keys: who may do what, always inside one tenant.
import { CreationOptional, DataTypes, InferAttributes, InferCreationAttributes, Model, Sequelize } from 'sequelize';

export class Tenant extends Model<InferAttributes<Tenant>, InferCreationAttributes<Tenant>> {
  declare id: string;
  declare name: string;
  declare slug: string;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class User extends Model<InferAttributes<User>, InferCreationAttributes<User>> {
  declare id: string;
  declare tenantId: string;
  declare email: string;
  declare name: string;
  declare active: CreationOptional<boolean>;
  /** BCP-47 (en, de, fr-CA); null: the tenant's default. */
  declare locale: CreationOptional<string | null>;
  /** IANA zone; null: UTC. */
  declare timeZone: CreationOptional<string | null>;
  declare version: CreationOptional<number>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
  declare roles?: Role[];
}

export class Role extends Model<InferAttributes<Role>, InferCreationAttributes<Role>> {
  declare id: string;
  declare tenantId: string;
  declare key: string;
  declare title: string;
  declare permissions: string[];
  declare version: CreationOptional<number>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

export class UserRole extends Model<InferAttributes<UserRole>, InferCreationAttributes<UserRole>> {
  declare userId: string;
  declare roleId: string;
  declare tenantId: string;
}

export class ApiKey extends Model<InferAttributes<ApiKey>, InferCreationAttributes<ApiKey>> {
  declare id: string;
  declare tenantId: string;
  declare userId: string;
  declare name: string;
  declare prefix: string;
  declare secretHash: string;
  /** The secret a rotation replaced, accepted until previousValidUntil (migration 0033). */
  declare previousSecretHash: CreationOptional<string | null>;
  declare previousValidUntil: CreationOptional<Date | null>;
  declare rotatedAt: CreationOptional<Date | null>;
  declare scopes: string[] | null;
  declare expiresAt: Date | null;
  declare revokedAt: CreationOptional<Date | null>;
  declare lastUsedAt: CreationOptional<Date | null>;
  /** Bumped by every change made through the API (migration 0036), not by use: the ETag If-Match compares. */
  declare version: CreationOptional<number>;
  declare createdAt: CreationOptional<Date>;
  declare updatedAt: CreationOptional<Date>;
}

const uuidPk = { type: DataTypes.UUID, primaryKey: true, defaultValue: DataTypes.UUIDV4 };
const stamps = { createdAt: DataTypes.DATE, updatedAt: DataTypes.DATE };

export function initIdentityModels(sequelize: Sequelize): void {
  const opts = { sequelize, underscored: true };
  Tenant.init({ id: uuidPk, name: DataTypes.STRING, slug: DataTypes.STRING, ...stamps }, { ...opts, tableName: 'tenants' });
  User.init(
    { id: uuidPk, tenantId: DataTypes.UUID, email: DataTypes.STRING, name: DataTypes.STRING, active: { type: DataTypes.BOOLEAN, defaultValue: true }, locale: DataTypes.STRING, timeZone: DataTypes.STRING, version: { type: DataTypes.INTEGER, defaultValue: 0 }, ...stamps },
    { ...opts, tableName: 'users', version: true },
  );
  Role.init(
    { id: uuidPk, tenantId: DataTypes.UUID, key: DataTypes.STRING, title: DataTypes.STRING, permissions: DataTypes.JSONB, version: { type: DataTypes.INTEGER, defaultValue: 0 }, ...stamps },
    { ...opts, tableName: 'roles', version: true },
  );
  UserRole.init(
    { userId: { type: DataTypes.UUID, primaryKey: true }, roleId: { type: DataTypes.UUID, primaryKey: true }, tenantId: DataTypes.UUID },
    { ...opts, tableName: 'user_roles', timestamps: false },
  );
  ApiKey.init(
    {
      id: uuidPk, tenantId: DataTypes.UUID, userId: DataTypes.UUID, name: DataTypes.STRING, prefix: DataTypes.STRING,
      secretHash: DataTypes.STRING, previousSecretHash: DataTypes.STRING, previousValidUntil: DataTypes.DATE, rotatedAt: DataTypes.DATE, scopes: DataTypes.JSONB, expiresAt: DataTypes.DATE, revokedAt: DataTypes.DATE,
      lastUsedAt: DataTypes.DATE, version: { type: DataTypes.INTEGER, defaultValue: 0 }, ...stamps,
    },
    { ...opts, tableName: 'api_keys', version: true },
  );
  User.belongsToMany(Role, { through: UserRole, foreignKey: 'userId', otherKey: 'roleId', as: 'roles' });
  Role.belongsToMany(User, { through: UserRole, foreignKey: 'roleId', otherKey: 'userId', as: 'users' });
}
