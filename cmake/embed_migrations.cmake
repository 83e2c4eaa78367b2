# Writes OUTPUT, a C++ source holding every migrations/NNNN_name.sql file as a string, so the
# control plane binary carries its schema with it. Run at build time; reruns when a file changes.
file(GLOB migration_files "${MIGRATIONS_DIR}/*.sql")
list(SORT migration_files)
set(entries "")
foreach(path ${migration_files})
  get_filename_component(file_name ${path} NAME)
  string(REGEX MATCH "^([0-9]+)_" _ ${file_name})
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "migration ${file_name} must start with a number and '_'")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  file(READ ${path} sql)
  string(APPEND entries "    {${version}, \"${file_name}\", R\"apim_sql(${sql})apim_sql\"},\n")
endforeach()
file(WRITE ${OUTPUT}.tmp
"// Generated from migrations/*.sql by cmake/embed_migrations.cmake; do not edit.
#include \"controlplane/store/migrations.h\"

namespace apim::store {

std::span<const Migration> EmbeddedMigrations() {
  static const Migration kMigrations[] = {
${entries}  };
  return kMigrations;
}

}  // namespace apim::store
")
file(COPY_FILE ${OUTPUT}.tmp ${OUTPUT} ONLY_IF_DIFFERENT)
